// llama2.c checkpoints: stories15M's header, the exact-size check, and the tensor layout on a synthetic file
// whose every float is its own index, so each tensor's first value tells where it was read from.
#include "loader/llama2c.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

namespace specattn::test {
namespace {

TEST(llama2c, stories15m_header) {
    if (!std::filesystem::exists(stories15m_path())) {
        GTEST_SKIP() << "run scripts/setup.sh to fetch " << stories15m_path();
    }
    const llama2c_checkpoint ck(stories15m_path());
    const model_hparams & hp = ck.hparams();
    EXPECT_EQ(hp.arch, model_arch::model_arch_llama);
    EXPECT_EQ(hp.arch_name, "llama2.c");
    EXPECT_EQ(hp.n_embd, 288);
    EXPECT_EQ(hp.n_ff, 768);
    EXPECT_EQ(hp.n_layer, 6);
    EXPECT_EQ(hp.n_head, 6);
    EXPECT_EQ(hp.n_head_kv, 6);
    EXPECT_EQ(hp.head_dim, 48);
    EXPECT_EQ(hp.n_vocab, 32000);
    EXPECT_EQ(hp.n_ctx_train, 256);
    EXPECT_TRUE(hp.tied_embeddings);
    EXPECT_EQ(hp.rope.layout, rope_layout::rope_layout_interleaved);
    EXPECT_FLOAT_EQ(hp.rope.theta, 10000.0f);
    EXPECT_FLOAT_EQ(hp.norm_eps, 1e-5f);
    EXPECT_EQ(hp.bos_id, 1);
    EXPECT_EQ(hp.eos_ids, (std::vector<int32_t>{2, 1})); // stories end with BOS, as run.c knows
    EXPECT_EQ(hp.weight_dtype, "f32");
    EXPECT_EQ(ck.tensors().size(), 1u + 9u * 6u + 1u); // embeddings, 9 per layer, final norm; tied: no lm_head
}

TEST(llama2c, stories15m_truncated_or_padded) {
    if (!std::filesystem::exists(stories15m_path())) {
        GTEST_SKIP() << "run scripts/setup.sh to fetch " << stories15m_path();
    }
    temp_dir dir;
    std::vector<uint8_t> bytes = read_bytes(stories15m_path());
    bytes.push_back(0);
    write_bytes(dir.file("padded.bin"), bytes);
    EXPECT_TRUE(contains(error_of([&] { llama2c_checkpoint ck(dir.file("padded.bin")); }),
                         "is 60816029 bytes but its header (dim 288, n_layers 6, vocab_size 32000, seq_len 256) needs "
                         "exactly 60816028 (trailing bytes)"));
    bytes.pop_back(); // the padding byte
    bytes.pop_back(); // and one byte of the real file
    write_bytes(dir.file("truncated.bin"), bytes);
    EXPECT_TRUE(contains(error_of([&] { llama2c_checkpoint ck(dir.file("truncated.bin")); }),
                         "is 60816027 bytes but its header"));
    EXPECT_TRUE(contains(error_of([&] { llama2c_checkpoint ck(dir.file("truncated.bin")); }), "(truncated)"));
}

// dim 8, hidden 16, 2 layers, 2 heads, 1 kv head (kv_dim 4), vocab 10, seq_len 4; untied when vocab < 0.
std::vector<uint8_t> synthetic(int32_t vocab, size_t n_floats) {
    const int32_t header[7] = {8, 16, 2, 2, 1, vocab, 4};
    std::vector<uint8_t> bytes(sizeof header + n_floats * 4);
    std::memcpy(bytes.data(), header, sizeof header);
    for (size_t i = 0; i < n_floats; ++i) {
        const float f = static_cast<float>(i);
        std::memcpy(bytes.data() + sizeof header + i * 4, &f, 4);
    }
    return bytes;
}

float first_value(const std::vector<tensor_ref> & tensors, const std::string & name) {
    for (const tensor_ref & t : tensors) {
        if (t.name == name) {
            float f = 0;
            std::memcpy(&f, t.data, 4);
            return f;
        }
    }
    ADD_FAILURE() << "no tensor " << name;
    return -1;
}

TEST(llama2c, synthetic_layout) {
    // emb 80 | rms_att 16 | wq 128 | wk 64 | wv 64 | wo 128 | rms_ffn 16 | w1 256 | w2 256 | w3 256 | rms_final 8 |
    // freq_cis 8 + 8 | wcls 80: 1368 floats untied.
    const std::vector<uint8_t> bytes = synthetic(-10, 1368);
    model_hparams hp;
    std::vector<tensor_ref> tensors;
    llama2c_parse(bytes.data(), bytes.size(), "synthetic.bin", hp, tensors);
    EXPECT_FALSE(hp.tied_embeddings);
    EXPECT_EQ(hp.n_vocab, 10);
    EXPECT_EQ(hp.n_embd_kv(), 4);
    EXPECT_EQ(first_value(tensors, "model.embed_tokens.weight"), 0.0f);
    EXPECT_EQ(first_value(tensors, "model.layers.1.input_layernorm.weight"), 88.0f);
    EXPECT_EQ(first_value(tensors, "model.layers.0.self_attn.q_proj.weight"), 96.0f);
    EXPECT_EQ(first_value(tensors, "model.layers.1.self_attn.k_proj.weight"), 256.0f);
    EXPECT_EQ(first_value(tensors, "model.layers.0.self_attn.v_proj.weight"), 288.0f);
    EXPECT_EQ(first_value(tensors, "model.layers.1.self_attn.o_proj.weight"), 416.0f);
    EXPECT_EQ(first_value(tensors, "model.layers.0.post_attention_layernorm.weight"), 480.0f);
    EXPECT_EQ(first_value(tensors, "model.layers.1.mlp.gate_proj.weight"), 624.0f); // w1
    EXPECT_EQ(first_value(tensors, "model.layers.0.mlp.down_proj.weight"), 752.0f); // w2
    EXPECT_EQ(first_value(tensors, "model.layers.1.mlp.up_proj.weight"), 1136.0f);  // w3
    EXPECT_EQ(first_value(tensors, "model.norm.weight"), 1264.0f);
    EXPECT_EQ(first_value(tensors, "lm_head.weight"), 1288.0f);
    for (const tensor_ref & t : tensors) {
        if (t.name == "model.layers.1.self_attn.k_proj.weight") {
            EXPECT_EQ(t.shape, (std::vector<int64_t>{4, 8}));
        }
        if (t.name == "model.layers.1.mlp.down_proj.weight") {
            EXPECT_EQ(t.shape, (std::vector<int64_t>{8, 16}));
        }
    }

    // Tied: the same payload without wcls.
    const std::vector<uint8_t> tied = synthetic(10, 1288);
    llama2c_parse(tied.data(), tied.size(), "tied.bin", hp, tensors);
    EXPECT_TRUE(hp.tied_embeddings);
    EXPECT_EQ(tensors.size(), 1u + 9u * 2u + 1u);
}

TEST(llama2c, bad_headers) {
    model_hparams hp;
    std::vector<tensor_ref> tensors;
    const auto parse_error = [&](std::vector<uint8_t> bytes) {
        return error_of([&] { llama2c_parse(bytes.data(), bytes.size(), "x.bin", hp, tensors); });
    };
    std::vector<uint8_t> bytes = synthetic(10, 1288);
    EXPECT_TRUE(contains(parse_error(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 20)), "too short"));
    const auto with = [&](int field, int32_t v) {
        std::vector<uint8_t> b = bytes;
        std::memcpy(b.data() + 4 * field, &v, 4);
        return b;
    };
    EXPECT_TRUE(contains(parse_error(with(0, 0)), "x.bin: not a llama2.c checkpoint"));
    EXPECT_TRUE(contains(parse_error(with(6, -5)), "non-positive"));
    EXPECT_TRUE(contains(parse_error(with(5, INT32_MIN)), "vocab_size = 2147483648 is out of range"));
    EXPECT_TRUE(contains(parse_error(with(3, 3)), "dim 8 is not divisible by n_heads 3"));
    EXPECT_TRUE(contains(parse_error(with(4, 4)), "num_key_value_heads = 4 is out of range [1, 2]"));
    EXPECT_TRUE(contains(parse_error(with(0, 0x616b3432)), "version 1/2"));
    EXPECT_TRUE(contains(parse_error(with(2, 1 << 30)), "num_hidden_layers = 1073741824 is out of range"));
}

} // namespace
} // namespace specattn::test
