// The PCRE2 wrapper behaves like the Oniguruma regexes of HF tokenizers: \s is Unicode White_Space (no U+180E),
// and matches are enumerated with the onig crate's empty-match rule. The real tokenizers check this end to end
// (random_test.cpp); these cases pin the translation itself.
#include "core/check.h"
#include "tokenizer/regex.h"
#include "tokenizer_test_util.h"

namespace specattn {

namespace {

std::vector<std::string> matches(const char * pattern, const std::string & text, bool literal = false) {
    const regex re(pattern, literal);
    std::vector<std::pair<size_t, size_t>> ranges;
    re.find_all(text, ranges);
    std::vector<std::string> out;
    for (const auto & [begin, end] : ranges) {
        out.push_back(text.substr(begin, end - begin));
    }
    return out;
}

using strings = std::vector<std::string>;

} // namespace

TEST(regex, whitespace_is_unicode_white_space) {
    const std::string mvs = "\xE1\xA0\x8E"; // U+180E, whitespace to PCRE2 but not to Oniguruma
    const std::string nbsp = "\xC2\xA0";
    const std::string ideographic = "\xE3\x80\x80";
    EXPECT_EQ(matches(R"(\s)", "a" + mvs + "b \t\n" + nbsp + ideographic),
              (strings{" ", "\t", "\n", nbsp, ideographic}));
    EXPECT_EQ(matches(R"(\S+)", "a" + mvs + "b c"), (strings{"a" + mvs + "b", "c"}));
    EXPECT_EQ(matches(R"([^\s\p{L}]+)", "a" + mvs + " b"), (strings{mvs}));
    EXPECT_EQ(matches(R"(\s+(?!\S))", "a   b" + mvs), (strings{"  "}));
}

TEST(regex, translation_keeps_other_syntax) {
    EXPECT_EQ(matches(R"(\Q\s\E)", "x\\sy s"), (strings{"\\s"}));             // quoted text stays literal
    EXPECT_EQ(matches(R"([]\s]+)", "a] b"), (strings{"] "}));                 // ']' first in a class is a member
    EXPECT_EQ(matches(R"([[:alpha:]\s]+)", "ab c1"), (strings{"ab c"}));     // POSIX class inside a class
    EXPECT_EQ(matches(R"(\\s)", "\\s s"), (strings{"\\s"}));                  // an escaped backslash, then 's'
    EXPECT_EQ(matches(R"((?i:'s|'t))", "'S 't"), (strings{"'S", "'t"}));
    EXPECT_EQ(matches("a.b", "a.b axb", true), (strings{"a.b"}));
    EXPECT_EQ(matches("\\s", "a\\sb s", true), (strings{"\\s"}));
}

// onig's find_iter: an empty match right after the previous match is skipped and the search moves on one
// character, so "b*" over "abc" yields "", "b", "" at 0, 1 and 3.
TEST(regex, empty_matches_follow_onig) {
    const regex re("b*", false);
    std::vector<std::pair<size_t, size_t>> ranges;
    re.find_all("abc", ranges);
    EXPECT_EQ(ranges, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 2}, {3, 3}}));
    re.find_all("", ranges);
    EXPECT_EQ(ranges, (std::vector<std::pair<size_t, size_t>>{{0, 0}}));
    // Invalid UTF-8 (a decoder's Replace can see raw bytes) never matches and never crashes.
    EXPECT_EQ(matches("b", std::string("a\xFF" "b\xC3", 4)), (strings{"b"}));
}

TEST(regex, bad_pattern_throws) {
    EXPECT_THROW(regex("(", false), error);
    EXPECT_THROW(regex("\\p{NoSuchProperty}", false), error);
    EXPECT_NO_THROW(regex("(", true));
}

} // namespace specattn
