// The GEMM choice file (backend/cuda/gemm_choice_cache.h): round trips, a file that is not a cache left untouched,
// malformed entries, the path from the environment. No GPU needed.
#include "backend/cuda/gemm_choice_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

using namespace specattn;

namespace {

// A fresh directory under the system's temporary one, removed with its contents at the end of the test.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        path = std::filesystem::temp_directory_path() /
               ("specattn_gemm_cache_" + std::to_string(static_cast<long long>(getpid())) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

std::string read_all(const std::filesystem::path & p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_all(const std::filesystem::path & p, const std::string & text) {
    std::ofstream(p, std::ios::binary) << text;
}

gemm_cached_choice choice_of(uint64_t seed, bool gemv) {
    gemm_cached_choice c;
    c.gemv = gemv;
    for (size_t i = 0; i < c.algo.size(); ++i) {
        c.algo[i] = seed * 0x9E3779B97F4A7C15ull + i * 0xFFFFFFFFull; // all 64 bits used, high ones too
    }
    return c;
}

// Restores an environment variable as it was.
struct saved_env {
    std::string name;
    bool was_set;
    std::string value;
    explicit saved_env(const char * n) : name(n), was_set(std::getenv(n) != nullptr) {
        if (was_set) {
            value = std::getenv(n);
        }
    }
    ~saved_env() {
        if (was_set) {
            setenv(name.c_str(), value.c_str(), 1);
        } else {
            unsetenv(name.c_str());
        }
    }
};

} // namespace

TEST(gemm_choice_cache, stores_and_loads_choices_in_a_new_directory) {
    const temp_dir dir;
    const std::string path = (dir.path / "sub" / "gemm_choices.json").string();
    std::string problem;
    EXPECT_FALSE(gemm_choice_cache_load(path, "H100|n 6144", &problem).has_value()) << "no file yet";
    EXPECT_EQ(problem, "");
    ASSERT_TRUE(gemm_choice_cache_store(path, "H100|n 6144", choice_of(1, false), &problem)) << problem;
    ASSERT_TRUE(gemm_choice_cache_store(path, "H100|n 4096", choice_of(2, true), &problem)) << problem;
    ASSERT_TRUE(gemm_choice_cache_store(path, "H100|n 6144", choice_of(3, false), &problem)) << problem; // replaces
    const auto a = gemm_choice_cache_load(path, "H100|n 6144", &problem);
    const auto b = gemm_choice_cache_load(path, "H100|n 4096", &problem);
    ASSERT_TRUE(a.has_value() && b.has_value()) << problem;
    EXPECT_EQ(a->algo, choice_of(3, false).algo);
    EXPECT_FALSE(a->gemv);
    EXPECT_EQ(b->algo, choice_of(2, true).algo);
    EXPECT_TRUE(b->gemv);
    EXPECT_FALSE(gemm_choice_cache_load(path, "H200|n 6144", &problem).has_value()) << "another key";
    EXPECT_EQ(problem, "");
    EXPECT_NE(read_all(path).find(gemm_choice_cache_format), std::string::npos);
    for (const auto & e : std::filesystem::directory_iterator(dir.path / "sub")) {
        EXPECT_EQ(e.path().filename(), "gemm_choices.json") << "no temporary file left behind";
    }
}

TEST(gemm_choice_cache, a_file_that_is_not_a_cache_is_reported_and_never_overwritten) {
    const temp_dir dir;
    for (const std::string & text : {std::string("my notes, not JSON"), std::string("{\"choices\": {}}"),
                                     std::string("[1, 2]"), std::string("{\"format\": \"other\", \"choices\": {}}"),
                                     std::string("{\"format\": \"specattn-gemm-choices-1\", \"choices\": []}")}) {
        const std::string path = (dir.path / "notes.txt").string();
        write_all(path, text);
        std::string problem;
        EXPECT_FALSE(gemm_choice_cache_load(path, "k", &problem).has_value()) << text;
        EXPECT_NE(problem.find("not a specattn-gemm-choices-1 file"), std::string::npos) << text << ": " << problem;
        problem.clear();
        EXPECT_FALSE(gemm_choice_cache_store(path, "k", choice_of(1, false), &problem)) << text;
        EXPECT_NE(problem.find(path), std::string::npos) << problem;
        EXPECT_EQ(read_all(path), text) << "left as it was";
    }
}

TEST(gemm_choice_cache, malformed_entries_are_reported_and_replaced) {
    const temp_dir dir;
    const std::string path = (dir.path / "c.json").string();
    const std::string good(128, 'a');
    const std::string bad_entries[] = {
        "{\"gemv\": false, \"algo\": \"" + good.substr(1) + "\"}",         // 127 digits
        "{\"gemv\": false, \"algo\": \"" + std::string(127, 'a') + "g\"}", // not hex
        "{\"gemv\": 1, \"algo\": \"" + good + "\"}",                       // gemv not a bool
        "{\"algo\": \"" + good + "\"}",                                    // no gemv
        "\"" + good + "\"",                                                // not an object
    };
    for (const std::string & entry : bad_entries) {
        write_all(path, "{\"format\": \"specattn-gemm-choices-1\", \"choices\": {\"k\": " + entry + "}}");
        std::string problem;
        EXPECT_FALSE(gemm_choice_cache_load(path, "k", &problem).has_value()) << entry;
        EXPECT_NE(problem.find("malformed entry for k"), std::string::npos) << entry << ": " << problem;
        problem.clear();
        ASSERT_TRUE(gemm_choice_cache_store(path, "k", choice_of(5, false), &problem)) << problem;
        const auto c = gemm_choice_cache_load(path, "k", &problem);
        ASSERT_TRUE(c.has_value()) << problem;
        EXPECT_EQ(c->algo, choice_of(5, false).algo);
    }
}

TEST(gemm_choice_cache, path_from_the_environment) {
    const saved_env cache("SPECATTN_GEMM_CACHE");
    const saved_env xdg("XDG_CACHE_HOME");
    const saved_env home("HOME");
    setenv("SPECATTN_GEMM_CACHE", "/x/choices.json", 1);
    EXPECT_EQ(gemm_choice_cache_path_from_env(), "/x/choices.json");
    setenv("SPECATTN_GEMM_CACHE", "0", 1);
    EXPECT_EQ(gemm_choice_cache_path_from_env(), "") << "=0: no file";
    unsetenv("SPECATTN_GEMM_CACHE");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    EXPECT_EQ(gemm_choice_cache_path_from_env(), "/xdg/specattn/gemm_choices.json");
    unsetenv("XDG_CACHE_HOME");
    EXPECT_EQ(gemm_choice_cache_path_from_env(), "/home/u/.cache/specattn/gemm_choices.json");
    unsetenv("HOME");
    EXPECT_EQ(gemm_choice_cache_path_from_env(), "");
}
