// safetensors parser: a good file, then one lie at a time (each must be a specattn::error naming the problem),
// then sharded checkpoints.
#include "loader/safetensors.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>

namespace specattn::test {
namespace {

std::vector<uint8_t> bf16_bytes(const std::vector<uint16_t> & v) {
    std::vector<uint8_t> out(v.size() * 2);
    std::memcpy(out.data(), v.data(), out.size());
    return out;
}

TEST(safetensors, good_file_parses) {
    temp_dir dir;
    const std::vector<float> a = {1, 2, 3, 4, 5, 6};
    const std::vector<uint16_t> b = {0x3f80, 0xc000, 0x0000, 0x7f80};
    write_safetensors(dir.file("m.safetensors"), {
                                                     {"a", "F32", {2, 3}, f32_bytes(a)},
                                                     {"b", "BF16", {4}, bf16_bytes(b)},
                                                     {"ids", "I64", {2}, std::vector<uint8_t>(16, 7)},
                                                     {"scalar", "F16", {}, {0x00, 0x3c}},
                                                     {"empty", "F32", {0, 5}, {}},
                                                 });
    const safetensors_file f(dir.file("m.safetensors"));
    ASSERT_EQ(f.tensors().size(), 5u);
    EXPECT_EQ(f.header().metadata.at("format"), "pt");

    const tensor_ref * ta = f.find("a");
    ASSERT_NE(ta, nullptr);
    EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_TRUE(ta->has_dtype);
    EXPECT_EQ(ta->type, dtype::dtype_f32);
    EXPECT_EQ(ta->n_elements, 6);
    ASSERT_EQ(ta->n_bytes(), 24u);
    std::vector<float> got(6);
    std::memcpy(got.data(), ta->data, 24);
    EXPECT_EQ(got, a);

    const tensor_ref * tb = f.find("b");
    ASSERT_NE(tb, nullptr);
    EXPECT_EQ(tb->type, dtype::dtype_bf16);
    EXPECT_EQ(tb->begin, 24u);
    EXPECT_EQ(std::memcmp(tb->data, b.data(), 8), 0);

    const tensor_ref * ids = f.find("ids");
    ASSERT_NE(ids, nullptr);
    EXPECT_FALSE(ids->has_dtype); // parses, but is no weight dtype
    EXPECT_EQ(ids->dtype_str, "I64");
    EXPECT_EQ(ids->elem_size, 8u);

    EXPECT_EQ(f.find("scalar")->n_elements, 1);
    EXPECT_EQ(f.find("empty")->n_elements, 0);
    EXPECT_EQ(f.find("nope"), nullptr);

    // The pure in-memory parser sees the same tensors.
    const std::vector<uint8_t> bytes = read_bytes(dir.file("m.safetensors"));
    const safetensors_header h = safetensors_parse(bytes.data(), bytes.size(), "mem");
    EXPECT_EQ(h.tensors.size(), 5u);
    EXPECT_EQ(h.data_offset + h.data_size, bytes.size());
}

// Writes header + data raw and returns the parse error.
std::string parse_error(const std::string & header, const std::vector<uint8_t> & data,
                        uint64_t header_len = UINT64_MAX) {
    temp_dir dir;
    write_raw_safetensors(dir.file("bad.safetensors"), header, data, header_len);
    return error_of([&] { safetensors_file f(dir.file("bad.safetensors")); });
}

const std::vector<uint8_t> data24(24, 0);

TEST(safetensors, header_length_lies) {
    const std::string ok = R"({"t":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}})";
    EXPECT_TRUE(contains(parse_error(ok, data24, ok.size() + 25), "runs past the end"));
    EXPECT_TRUE(contains(parse_error(ok, data24, 0), "header length is 0"));
    EXPECT_TRUE(contains(parse_error(ok, data24, uint64_t{1} << 40), "exceeds"));
    EXPECT_TRUE(contains(parse_error(ok, data24, UINT64_MAX - 1), "exceeds"));
    temp_dir dir;
    write_bytes(dir.file("short.safetensors"), {1, 2, 3});
    EXPECT_TRUE(contains(error_of([&] { safetensors_file f(dir.file("short.safetensors")); }), "too short"));
}

TEST(safetensors, header_not_json) {
    EXPECT_TRUE(contains(parse_error("{not json", data24), "is not valid JSON"));
    EXPECT_TRUE(contains(parse_error("[1, 2]", data24), "not an object"));
    EXPECT_TRUE(contains(parse_error(R"({"t": 5})", data24), "tensor t is a JSON integer, not an object"));
    EXPECT_TRUE(contains(parse_error(std::string("{\"\xff\": 1}"), data24), "is not valid JSON"));
}

TEST(safetensors, duplicate_tensor_name) {
    const std::string h = R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                          R"("t":{"dtype":"F32","shape":[3],"data_offsets":[12,24]}})";
    EXPECT_TRUE(contains(parse_error(h, data24), "duplicate key 't'"));
}

TEST(safetensors, offsets_past_end) {
    const std::string h = R"({"t":{"dtype":"F32","shape":[25],"data_offsets":[0,100]}})";
    EXPECT_TRUE(contains(parse_error(h, data24), "tensor t has data_offsets [0, 100] past the end"));
}

TEST(safetensors, end_before_begin) {
    const std::string h = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[16,8]}})";
    EXPECT_TRUE(contains(parse_error(h, data24), "end before begin"));
}

TEST(safetensors, bad_offsets) {
    EXPECT_TRUE(contains(parse_error(R"({"t":{"dtype":"F32","shape":[2]}})", data24), "no \"data_offsets\""));
    EXPECT_TRUE(contains(parse_error(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}})", data24),
                         "no \"data_offsets\""));
    EXPECT_TRUE(contains(parse_error(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", data24),
                         "not non-negative integers"));
    EXPECT_TRUE(contains(parse_error(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", data24),
                         "not non-negative integers"));
    EXPECT_TRUE(
        contains(parse_error(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})", data24),
                 "not non-negative integers"));
}

TEST(safetensors, size_not_matching_shape) {
    const std::string h = R"({"t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})";
    EXPECT_TRUE(contains(parse_error(h, data24), "tensor t holds 20 bytes but its shape and dtype F32 need 24"));
    const std::string bf = R"({"t":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]}})";
    EXPECT_TRUE(contains(parse_error(bf, data24), "need 12"));
    const std::string huge = R"({"t":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,24]}})";
    EXPECT_TRUE(contains(parse_error(huge, data24), "more than fit in memory"));
    const std::string overflow = R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24]}})";
    EXPECT_TRUE(contains(parse_error(overflow, data24), "overflows"));
}

TEST(safetensors, overlapping_ranges) {
    const std::string h = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                          R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
    EXPECT_TRUE(contains(parse_error(h, data24), "tensors a [0, 16] and b [8, 24] overlap"));
    const std::string same = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})";
    EXPECT_TRUE(contains(parse_error(same, data24), "overlap"));
}

TEST(safetensors, unknown_dtype) {
    const std::string h = R"({"w":{"dtype":"Q4_K","shape":[4],"data_offsets":[0,16]}})";
    EXPECT_TRUE(contains(parse_error(h, data24), "tensor w has unknown dtype 'Q4_K'"));
    EXPECT_TRUE(contains(parse_error(R"({"w":{"dtype":4,"shape":[4],"data_offsets":[0,16]}})", data24),
                         "tensor w has no \"dtype\" string"));
}

TEST(safetensors, bad_shape) {
    EXPECT_TRUE(contains(parse_error(R"({"w":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}})", data24),
                         "tensor w has a shape entry -1"));
    EXPECT_TRUE(contains(parse_error(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,16]}})", data24),
                         "shape entry 2.5"));
    EXPECT_TRUE(contains(parse_error(R"({"w":{"dtype":"F32","shape":["4"],"data_offsets":[0,16]}})", data24),
                         "not a non-negative integer"));
    EXPECT_TRUE(contains(parse_error(R"({"w":{"dtype":"F32","shape":4,"data_offsets":[0,16]}})", data24),
                         "no \"shape\" array"));
}

TEST(safetensors, bad_metadata) {
    EXPECT_TRUE(contains(parse_error(R"({"__metadata__":[1]})", data24), "__metadata__ is not an object"));
}

TEST(safetensors, truncated_file) {
    temp_dir dir;
    write_safetensors(dir.file("m.safetensors"), {{"a", "F32", {2, 3}, f32_bytes({1, 2, 3, 4, 5, 6})}});
    std::vector<uint8_t> bytes = read_bytes(dir.file("m.safetensors"));
    bytes.pop_back();
    write_bytes(dir.file("t.safetensors"), bytes);
    EXPECT_TRUE(contains(error_of([&] { safetensors_file f(dir.file("t.safetensors")); }),
                         "tensor a has data_offsets [0, 24] past the end of the data section (23 bytes"));
    EXPECT_TRUE(contains(error_of([&] { safetensors_file f(dir.file("missing.safetensors")); }), "cannot open"));
}

TEST(safetensors, odd_header_length_is_fine) {
    // Nothing requires the reference writer's 8-byte padding; the data just starts unaligned.
    const std::string h = R"({"t":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}} )";
    temp_dir dir;
    write_raw_safetensors(dir.file("odd.safetensors"), h, data24);
    const safetensors_file f(dir.file("odd.safetensors"));
    EXPECT_EQ(f.header().data_offset, 8 + h.size());
}

// Two shards and an index: a in shard 1, b and c in shard 2.
void write_sharded(const temp_dir & dir, const std::string & weight_map_json) {
    write_safetensors(dir.file("s1.safetensors"), {{"a", "F32", {2}, f32_bytes({1, 2})}});
    write_safetensors(dir.file("s2.safetensors"),
                      {{"b", "F32", {1}, f32_bytes({3})}, {"c", "F32", {1}, f32_bytes({4})}});
    write_text(dir.file("model.safetensors.index.json"),
               R"({"metadata": {"total_size": 16}, "weight_map": )" + weight_map_json + "}");
}

TEST(safetensors_sharded, good_index) {
    temp_dir dir;
    write_sharded(dir, R"({"a": "s1.safetensors", "b": "s2.safetensors", "c": "s2.safetensors"})");
    const safetensors_checkpoint ck(dir.file("model.safetensors.index.json"));
    EXPECT_EQ(ck.n_files(), 2);
    ASSERT_EQ(ck.tensors().size(), 3u);
    ASSERT_NE(ck.find("c"), nullptr);
    float c = 0;
    std::memcpy(&c, ck.find("c")->data, 4);
    EXPECT_EQ(c, 4.0f);
    EXPECT_TRUE(contains(ck.find("c")->file, "s2.safetensors"));
}

TEST(safetensors_sharded, fixture_index) {
    const safetensors_checkpoint ck(fixture_dir("qwen3_qknorm_bf16_sharded") + "/model.safetensors.index.json");
    EXPECT_EQ(ck.n_files(), 6);
    EXPECT_EQ(ck.tensors().size(), 24u);
}

TEST(safetensors_sharded, missing_shard) {
    temp_dir dir;
    write_sharded(dir, R"({"a": "s1.safetensors", "b": "s2.safetensors", "c": "s3.safetensors"})");
    EXPECT_TRUE(contains(error_of([&] { safetensors_checkpoint ck(dir.file("model.safetensors.index.json")); }),
                         "shard " + dir.file("s3.safetensors") + " does not exist"));
}

TEST(safetensors_sharded, tensor_missing_from_shard) {
    temp_dir dir;
    write_sharded(dir, R"({"a": "s1.safetensors", "b": "s2.safetensors", "c": "s2.safetensors",
                           "d": "s1.safetensors"})");
    EXPECT_TRUE(contains(error_of([&] { safetensors_checkpoint ck(dir.file("model.safetensors.index.json")); }),
                         "tensor d is mapped to " + dir.file("s1.safetensors") + " but that shard does not hold it"));
}

TEST(safetensors_sharded, tensor_in_wrong_shard_or_twice) {
    temp_dir dir;
    write_sharded(dir, R"({"a": "s1.safetensors", "b": "s2.safetensors"})");
    EXPECT_TRUE(contains(error_of([&] { safetensors_checkpoint ck(dir.file("model.safetensors.index.json")); }),
                         "tensor c in " + dir.file("s2.safetensors") + " is not in the weight_map"));
    write_safetensors(dir.file("s1.safetensors"),
                      {{"a", "F32", {2}, f32_bytes({1, 2})}, {"b", "F32", {1}, f32_bytes({3})}});
    write_text(dir.file("model.safetensors.index.json"),
               R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors", "c": "s2.safetensors"}})");
    EXPECT_TRUE(contains(error_of([&] { safetensors_checkpoint ck(dir.file("model.safetensors.index.json")); }),
                         "tensor b appears in both"));
}

TEST(safetensors_sharded, bad_index) {
    temp_dir dir;
    write_sharded(dir, R"({"a": "s1.safetensors", "a": "s1.safetensors"})");
    EXPECT_TRUE(contains(error_of([&] { safetensors_checkpoint ck(dir.file("model.safetensors.index.json")); }),
                         "duplicate key 'a'"));
    write_sharded(dir, R"({"a": "../s1.safetensors"})");
    EXPECT_TRUE(contains(error_of([&] { safetensors_checkpoint ck(dir.file("model.safetensors.index.json")); }),
                         "not a plain file name"));
    write_sharded(dir, R"({})");
    EXPECT_TRUE(contains(error_of([&] { safetensors_checkpoint ck(dir.file("model.safetensors.index.json")); }),
                         "weight_map is empty"));
    write_text(dir.file("model.safetensors.index.json"), R"({"weights": {}})");
    EXPECT_TRUE(contains(error_of([&] { safetensors_checkpoint ck(dir.file("model.safetensors.index.json")); }),
                         "missing \"weight_map\""));
    write_text(dir.file("model.safetensors.index.json"), "{");
    EXPECT_TRUE(contains(error_of([&] { safetensors_checkpoint ck(dir.file("model.safetensors.index.json")); }),
                         "is not valid JSON"));
}

} // namespace
} // namespace specattn::test
