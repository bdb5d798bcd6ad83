// The GEMM choice file (see gemm_choice_cache.h).
#include "backend/cuda/gemm_choice_cache.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace specattn {

namespace {

// The file's JSON, or nullopt (with *problem) when it is not a cache; an empty cache when there is no file.
std::optional<nlohmann::json> read_cache(const std::string & path, std::string * problem) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        return nlohmann::json{{"format", gemm_choice_cache_format}, {"choices", nlohmann::json::object()}};
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
        *problem = "GEMM choice cache " + path + ": cannot be read";
        return std::nullopt;
    }
    nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || doc.value("format", std::string()) != gemm_choice_cache_format ||
        !doc.contains("choices") || !doc["choices"].is_object()) {
        *problem = "GEMM choice cache " + path + ": not a " + gemm_choice_cache_format +
                   " file (left as it is; set SPECATTN_GEMM_CACHE to another path, or =0)";
        return std::nullopt;
    }
    return doc;
}

std::string to_hex(const std::array<uint64_t, 8> & words) {
    std::string s;
    char buf[17];
    for (uint64_t w : words) {
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(w));
        s += buf;
    }
    return s;
}

bool from_hex(const std::string & s, std::array<uint64_t, 8> & words) {
    if (s.size() != 16 * words.size()) {
        return false;
    }
    for (size_t i = 0; i < words.size(); ++i) {
        uint64_t w = 0;
        for (size_t j = 0; j < 16; ++j) {
            const char c = s[16 * i + j];
            const int v = c >= '0' && c <= '9' ? c - '0' : (c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1);
            if (v < 0) {
                return false;
            }
            w = (w << 4) | static_cast<uint64_t>(v);
        }
        words[i] = w;
    }
    return true;
}

} // namespace

std::string gemm_choice_cache_path_from_env() {
    const char * env = std::getenv("SPECATTN_GEMM_CACHE");
    if (env != nullptr) {
        return std::string(env) == "0" ? std::string() : std::string(env);
    }
    const char * xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg != nullptr && xdg[0] != '\0') {
        return std::string(xdg) + "/specattn/gemm_choices.json";
    }
    const char * home = std::getenv("HOME");
    if (home != nullptr && home[0] != '\0') {
        return std::string(home) + "/.cache/specattn/gemm_choices.json";
    }
    return std::string();
}

std::optional<gemm_cached_choice> gemm_choice_cache_load(const std::string & path, const std::string & key,
                                                         std::string * problem) {
    const std::optional<nlohmann::json> doc = read_cache(path, problem);
    if (!doc || !(*doc)["choices"].contains(key)) {
        return std::nullopt;
    }
    const nlohmann::json & e = (*doc)["choices"][key];
    gemm_cached_choice c;
    if (!e.is_object() || !e.contains("gemv") || !e["gemv"].is_boolean() || !e.contains("algo") ||
        !e["algo"].is_string() || !from_hex(e["algo"].get<std::string>(), c.algo)) {
        *problem = "GEMM choice cache " + path + ": malformed entry for " + key + " (tuning again)";
        return std::nullopt;
    }
    c.gemv = e["gemv"].get<bool>();
    return c;
}

bool gemm_choice_cache_store(const std::string & path, const std::string & key, const gemm_cached_choice & choice,
                             std::string * problem) {
    std::optional<nlohmann::json> doc = read_cache(path, problem);
    if (!doc) {
        return false;
    }
    (*doc)["choices"][key] = {{"gemv", choice.gemv}, {"algo", to_hex(choice.algo)}};
    std::error_code ec;
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) {
        std::filesystem::create_directories(dir, ec);
    }
    const std::string tmp = path + ".tmp." + std::to_string(static_cast<long long>(getpid()));
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << doc->dump(1) << "\n";
        if (!out) {
            *problem = "GEMM choice cache " + path + ": cannot write " + tmp;
            std::filesystem::remove(tmp, ec);
            return false;
        }
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        *problem = "GEMM choice cache " + path + ": " + ec.message();
        std::filesystem::remove(tmp, ec);
        return false;
    }
    return true;
}

} // namespace specattn
