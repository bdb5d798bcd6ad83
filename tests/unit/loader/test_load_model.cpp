// load_model: every fixture loads with the right shapes and exactly the file's values (decoded here
// independently of core/dtype), and modified copies (missing, extra, misshapen or integer tensors, bad paths)
// fail with a message naming the tensor or path.
#include "loader/safetensors.h"
#include "model/model.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

namespace specattn::test {
namespace {

const char * const fixtures[] = {
    "llama_gqa_llama3rope_bf16", "llama_mha_tied_f32_oldconfig", "mistral_gqa4_f32",
    "qwen2_bias_tied_f16",       "qwen3_qknorm_bf16_sharded",    "qwen3_untied_f32",
};

float decode_bf16(uint16_t h) {
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

float decode_f16(uint16_t h) {
    const int exp = (h >> 10) & 0x1f;
    const int mant = h & 0x3ff;
    const float mag =
        exp == 0 ? std::ldexp(static_cast<float>(mant), -24) : std::ldexp(static_cast<float>(mant + 1024), exp - 25);
    return (h & 0x8000) ? -mag : mag; // fixture weights are finite
}

std::vector<float> decode(const tensor_ref & t) {
    std::vector<float> out(static_cast<size_t>(t.n_elements));
    for (size_t i = 0; i < out.size(); ++i) {
        if (t.dtype_str == "F32") {
            std::memcpy(&out[i], t.data + 4 * i, 4);
        } else {
            uint16_t h;
            std::memcpy(&h, t.data + 2 * i, 2);
            out[i] = t.dtype_str == "BF16" ? decode_bf16(h) : decode_f16(h);
        }
    }
    return out;
}

// Where the model keeps the tensor `name` (written out here, independently of load.cpp's table).
const std::vector<float> * destination(const model & m, const std::string & name) {
    const std::pair<const char *, const std::vector<float> *> globals[] = {
        {"model.embed_tokens.weight", &m.w.tok_embd.w},
        {"model.norm.weight", &m.w.out_norm},
        {"lm_head.weight", &m.w.output.w},
    };
    for (const auto & [n, v] : globals) {
        if (name == n) {
            return v;
        }
    }
    int il = -1;
    char rest[128] = {};
    if (std::sscanf(name.c_str(), "model.layers.%d.%127s", &il, rest) != 2) {
        return nullptr;
    }
    const layer_weights & l = m.w.layers.at(static_cast<size_t>(il));
    const std::pair<const char *, const std::vector<float> *> per_layer[] = {
        {"input_layernorm.weight", &l.attn_norm}, {"post_attention_layernorm.weight", &l.ffn_norm},
        {"self_attn.q_proj.weight", &l.wq.w},     {"self_attn.k_proj.weight", &l.wk.w},
        {"self_attn.v_proj.weight", &l.wv.w},     {"self_attn.o_proj.weight", &l.wo.w},
        {"self_attn.q_proj.bias", &l.bq},         {"self_attn.k_proj.bias", &l.bk},
        {"self_attn.v_proj.bias", &l.bv},         {"self_attn.q_norm.weight", &l.q_norm},
        {"self_attn.k_norm.weight", &l.k_norm},   {"mlp.gate_proj.weight", &l.w_gate.w},
        {"mlp.up_proj.weight", &l.w_up.w},        {"mlp.down_proj.weight", &l.w_down.w},
    };
    for (const auto & [suffix, v] : per_layer) {
        if (std::string(rest) == suffix) {
            return v;
        }
    }
    return nullptr;
}

std::string weights_file(const std::string & dir) {
    const std::string single = dir + "/model.safetensors";
    return std::filesystem::exists(single) ? single : dir + "/model.safetensors.index.json";
}

void expect_matrix(const matrix & m, int64_t n_out, int64_t n_in, const char * what) {
    EXPECT_EQ(m.n_out, n_out) << what;
    EXPECT_EQ(m.n_in, n_in) << what;
    EXPECT_EQ(static_cast<int64_t>(m.w.size()), n_out * n_in) << what;
}

TEST(load_model, fixtures_load_with_file_values) {
    for (const char * name : fixtures) {
        SCOPED_TRACE(name);
        const std::string dir = fixture_dir(name);
        const model m = load_model(dir);
        const model_hparams & hp = m.hp;
        EXPECT_EQ(m.path, dir);
        ASSERT_EQ(static_cast<int64_t>(m.w.layers.size()), hp.n_layer);
        expect_matrix(m.w.tok_embd, hp.n_vocab, hp.n_embd, "tok_embd");
        EXPECT_EQ(static_cast<int64_t>(m.w.out_norm.size()), hp.n_embd);
        if (hp.tied_embeddings) {
            EXPECT_TRUE(m.w.output.empty());
            EXPECT_EQ(&m.w.lm_head(), &m.w.tok_embd);
        } else {
            expect_matrix(m.w.output, hp.n_vocab, hp.n_embd, "output");
        }
        for (const layer_weights & l : m.w.layers) {
            expect_matrix(l.wq, hp.n_embd_q(), hp.n_embd, "wq");
            expect_matrix(l.wk, hp.n_embd_kv(), hp.n_embd, "wk");
            expect_matrix(l.wv, hp.n_embd_kv(), hp.n_embd, "wv");
            expect_matrix(l.wo, hp.n_embd, hp.n_embd_q(), "wo");
            expect_matrix(l.w_gate, hp.n_ff, hp.n_embd, "w_gate");
            expect_matrix(l.w_up, hp.n_ff, hp.n_embd, "w_up");
            expect_matrix(l.w_down, hp.n_embd, hp.n_ff, "w_down");
            EXPECT_EQ(static_cast<int64_t>(l.attn_norm.size()), hp.n_embd);
            EXPECT_EQ(static_cast<int64_t>(l.ffn_norm.size()), hp.n_embd);
            EXPECT_EQ(static_cast<int64_t>(l.bq.size()), hp.qkv_bias ? hp.n_embd_q() : 0);
            EXPECT_EQ(static_cast<int64_t>(l.bv.size()), hp.qkv_bias ? hp.n_embd_kv() : 0);
            EXPECT_EQ(static_cast<int64_t>(l.q_norm.size()), hp.qk_norm ? hp.head_dim : 0);
            EXPECT_EQ(static_cast<int64_t>(l.k_norm.size()), hp.qk_norm ? hp.head_dim : 0);
        }
        // Every tensor of the file, bit for bit.
        const safetensors_checkpoint ck(weights_file(dir));
        for (const tensor_ref & t : ck.tensors()) {
            const std::vector<float> * dst = destination(m, t.name);
            ASSERT_NE(dst, nullptr) << t.name;
            const std::vector<float> want = decode(t);
            ASSERT_EQ(dst->size(), want.size()) << t.name;
            EXPECT_EQ(std::memcmp(dst->data(), want.data(), want.size() * 4), 0) << t.name;
        }
    }
}

TEST(load_model, bf16_value_converts_exactly) {
    const model m = load_model(fixture_dir("llama_gqa_llama3rope_bf16"));
    // model.embed_tokens.weight is the second tensor, at data offset 65536; its first element is [0, 0].
    const std::vector<uint8_t> file = read_bytes(fixture_dir("llama_gqa_llama3rope_bf16") + "/model.safetensors");
    const size_t at = 8 + 2160 + 65536;
    const uint32_t bits = static_cast<uint32_t>(file[at] | (file[at + 1] << 8)) << 16;
    float want;
    std::memcpy(&want, &bits, 4);
    EXPECT_NE(want, 0.0f);
    EXPECT_EQ(m.w.tok_embd.w[0], want);
    EXPECT_EQ(m.hp.weight_dtype, "bf16");
}

TEST(load_model, path_forms) {
    const std::string dir = fixture_dir("qwen2_bias_tied_f16");
    EXPECT_EQ(load_model(dir + "/config.json").hp.n_layer, 2);
    EXPECT_EQ(load_model(dir + "/model.safetensors").hp.n_layer, 2);
    EXPECT_FALSE(is_llama2c_path(dir));
    EXPECT_FALSE(is_llama2c_path(dir + "/config.json"));
    EXPECT_FALSE(is_llama2c_path(dir + "/nope.bin"));
    EXPECT_TRUE(
        contains(error_of([] { load_model("/nonexistent/model"); }), "model path /nonexistent/model does not exist"));
    EXPECT_TRUE(contains(error_of([] { load_model(""); }), "empty model path"));
    temp_dir tmp;
    EXPECT_TRUE(contains(error_of([&] { load_model(tmp.path()); }), tmp.path() + " has no config.json"));
    copy_dir_files(dir, tmp.path());
    std::filesystem::remove(tmp.file("model.safetensors"));
    write_text(tmp.file("pytorch_model.bin"), "x");
    EXPECT_TRUE(contains(error_of([&] { load_model(tmp.path()); }),
                         tmp.path() + " has no model.safetensors or model.safetensors.index.json (PyTorch"));
}

TEST(load_model, progress_reports) {
    std::vector<std::pair<size_t, size_t>> calls;
    load_model(fixture_dir("qwen3_qknorm_bf16_sharded"),
               [&](size_t done, size_t total) { calls.emplace_back(done, total); });
    ASSERT_FALSE(calls.empty());
    EXPECT_LE(calls.size(), 101u);
    EXPECT_EQ(calls.back().first, calls.back().second);
    EXPECT_EQ(calls.back().second, 287616u); // the index's total_size
    for (size_t i = 1; i < calls.size(); ++i) {
        EXPECT_GT(calls[i].first, calls[i - 1].first);
    }
    // A callback may cancel the load by throwing; the exception comes out of load_model.
    EXPECT_TRUE(contains(
        error_of([] { load_model(fixture_dir("mistral_gqa4_f32"), [](size_t, size_t) { throw error("cancelled"); }); }),
        "cancelled"));
}

// A copy of a fixture directory whose model.safetensors is rewritten through `edit`.
template <typename F>
void write_modified(const temp_dir & tmp, const std::string & fixture, F && edit, bool misalign = false) {
    const std::string dir = fixture_dir(fixture);
    copy_dir_files(dir, tmp.path());
    const safetensors_file f(dir + "/model.safetensors");
    std::vector<st_tensor> tensors;
    for (const tensor_ref & t : f.tensors()) {
        tensors.push_back({t.name, t.dtype_str, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes())});
    }
    edit(tensors);
    write_safetensors(tmp.file("model.safetensors"), tensors, misalign);
}

st_tensor * find(std::vector<st_tensor> & tensors, const std::string & name) {
    for (st_tensor & t : tensors) {
        if (t.name == name)
            return &t;
    }
    return nullptr;
}

std::string load_error(const std::string & fixture, const std::function<void(std::vector<st_tensor> &)> & edit) {
    temp_dir tmp;
    write_modified(tmp, fixture, edit);
    return error_of([&] { load_model(tmp.path()); });
}

TEST(load_model, missing_tensor) {
    EXPECT_TRUE(contains(load_error("mistral_gqa4_f32",
                                    [](std::vector<st_tensor> & ts) {
                                        std::erase_if(ts, [](const st_tensor & t) {
                                            return t.name == "model.layers.1.mlp.up_proj.weight";
                                        });
                                    }),
                         "missing tensor model.layers.1.mlp.up_proj.weight in "));
    EXPECT_TRUE(contains(load_error("mistral_gqa4_f32",
                                    [](std::vector<st_tensor> & ts) {
                                        std::erase_if(ts,
                                                      [](const st_tensor & t) { return t.name == "lm_head.weight"; });
                                    }),
                         "missing tensor lm_head.weight"));
    EXPECT_TRUE(contains(load_error("qwen2_bias_tied_f16",
                                    [](std::vector<st_tensor> & ts) {
                                        std::erase_if(ts, [](const st_tensor & t) {
                                            return t.name == "model.layers.0.self_attn.k_proj.bias";
                                        });
                                    }),
                         "missing tensor model.layers.0.self_attn.k_proj.bias"));
}

TEST(load_model, extra_tensor) {
    EXPECT_TRUE(contains(
        load_error(
            "mistral_gqa4_f32",
            [](std::vector<st_tensor> & ts) {
                ts.push_back({"model.layers.0.self_attn.o_proj.bias", "F32", {64}, std::vector<uint8_t>(256, 0)});
            }),
        "unexpected tensor model.layers.0.self_attn.o_proj.bias in "));
    // Qwen2's biases in a Llama: unexpected, not silently ignored.
    EXPECT_TRUE(contains(
        load_error(
            "llama_mha_tied_f32_oldconfig",
            [](std::vector<st_tensor> & ts) {
                ts.push_back({"model.layers.1.self_attn.q_proj.bias", "F32", {64}, std::vector<uint8_t>(256, 0)});
            }),
        "unexpected tensor model.layers.1.self_attn.q_proj.bias"));
    EXPECT_TRUE(contains(
        load_error(
            "mistral_gqa4_f32",
            [](std::vector<st_tensor> & ts) {
                ts.push_back({"model.layers.2.input_layernorm.weight", "F32", {64}, std::vector<uint8_t>(256, 0)});
            }),
        "unexpected tensor model.layers.2.input_layernorm.weight"));
}

TEST(load_model, skippable_and_tied_extras) {
    temp_dir tmp;
    write_modified(tmp, "mistral_gqa4_f32", [](std::vector<st_tensor> & ts) {
        ts.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", "F32", {4}, std::vector<uint8_t>(16, 0)});
    });
    EXPECT_EQ(load_model(tmp.path()).w.layers.size(), 2u);

    // Tied in config.json but lm_head stored anyway: it becomes the output.
    temp_dir tied;
    write_modified(tied, "llama_mha_tied_f32_oldconfig", [](std::vector<st_tensor> & ts) {
        st_tensor lm = *find(ts, "model.embed_tokens.weight");
        lm.name = "lm_head.weight";
        std::fill(lm.bytes.begin(), lm.bytes.end(), 0);
        ts.push_back(lm);
    });
    const model m = load_model(tied.path());
    EXPECT_TRUE(m.hp.tied_embeddings);
    EXPECT_EQ(m.w.output.n_out, 512);
    EXPECT_EQ(&m.w.lm_head(), &m.w.output);
}

TEST(load_model, unaligned_data_loads) {
    for (const char * fixture : {"llama_gqa_llama3rope_bf16", "qwen2_bias_tied_f16", "mistral_gqa4_f32"}) {
        temp_dir tmp;
        write_modified(
            tmp, fixture, [](std::vector<st_tensor> &) {}, /*misalign=*/true);
        const model want = load_model(fixture_dir(fixture));
        const model got = load_model(tmp.path());
        EXPECT_EQ(got.w.tok_embd.w, want.w.tok_embd.w) << fixture;
        EXPECT_EQ(got.w.layers[1].w_down.w, want.w.layers[1].w_down.w) << fixture;
    }
}

TEST(load_model, wrong_shape) {
    EXPECT_TRUE(contains(load_error("llama_gqa_llama3rope_bf16",
                                    [](std::vector<st_tensor> & ts) {
                                        find(ts, "model.layers.1.mlp.up_proj.weight")->shape = {64, 160};
                                    }),
                         "tensor model.layers.1.mlp.up_proj.weight has shape [64, 160], expected [160, 64]"));
    EXPECT_TRUE(contains(load_error("qwen3_untied_f32",
                                    [](std::vector<st_tensor> & ts) {
                                        st_tensor * t = find(ts, "model.layers.0.self_attn.q_norm.weight");
                                        t->shape = {2, 24};
                                    }),
                         "tensor model.layers.0.self_attn.q_norm.weight has shape [2, 24], expected [48]"));
}

TEST(load_model, unsupported_dtype) {
    EXPECT_TRUE(contains(load_error("mistral_gqa4_f32",
                                    [](std::vector<st_tensor> & ts) { find(ts, "model.norm.weight")->dtype = "I32"; }),
                         "tensor model.norm.weight has dtype I32, unsupported for weights"));
    EXPECT_TRUE(contains(load_error("llama_gqa_llama3rope_bf16",
                                    [](std::vector<st_tensor> & ts) {
                                        find(ts, "model.layers.0.input_layernorm.weight")->dtype = "I16";
                                    }),
                         "tensor model.layers.0.input_layernorm.weight has dtype I16"));
}

TEST(load_model, config_and_weights_disagree) {
    const auto error_with_config = [](const char * key, int value) {
        temp_dir tmp;
        copy_dir_files(fixture_dir("mistral_gqa4_f32"), tmp.path());
        const std::vector<uint8_t> text = read_bytes(tmp.file("config.json"));
        nlohmann::json cfg = nlohmann::json::parse(text.begin(), text.end());
        cfg[key] = value;
        write_text(tmp.file("config.json"), cfg.dump());
        return error_of([&] { load_model(tmp.path()); });
    };
    EXPECT_TRUE(
        contains(error_with_config("num_hidden_layers", 3), "missing tensor model.layers.2.input_layernorm.weight"));
    EXPECT_TRUE(contains(error_with_config("num_hidden_layers", 1), "unexpected tensor model.layers.1."));
    EXPECT_TRUE(contains(error_with_config("num_key_value_heads", 4),
                         "tensor model.layers.0.self_attn.k_proj.weight has shape [16, 64], expected [32, 64]"));
}

TEST(load_model, stories15m) {
    if (!std::filesystem::exists(stories15m_path())) {
        GTEST_SKIP() << "run scripts/setup.sh to fetch " << stories15m_path();
    }
    EXPECT_TRUE(is_llama2c_path(stories15m_path()));
    const auto t0 = std::chrono::steady_clock::now();
    int n_calls = 0;
    const model m = load_model(stories15m_path(), [&](size_t, size_t) { ++n_calls; });
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("stories15M: load_model %.1f ms, %d progress calls\n", ms, n_calls);
    EXPECT_LE(n_calls, 101);
    EXPECT_EQ(m.hp.n_embd, 288);
    EXPECT_TRUE(m.w.output.empty());
    expect_matrix(m.w.tok_embd, 32000, 288, "tok_embd");
    expect_matrix(m.w.layers[5].w_down, 288, 768, "w_down");
    // The first embedding value sits right after the 28-byte header.
    const std::vector<uint8_t> head = read_bytes(stories15m_path());
    float want;
    std::memcpy(&want, head.data() + 28, 4);
    EXPECT_EQ(m.w.tok_embd.w[0], want);
    // The final norm follows the 6 layers.
    const size_t norm_at = 28 + 4 * (32000 * 288 + 6 * (288 + 4 * 288 * 288 + 288 + 3 * 768 * 288));
    std::memcpy(&want, head.data() + norm_at, 4);
    EXPECT_EQ(m.w.out_norm[0], want);
}

} // namespace
} // namespace specattn::test
