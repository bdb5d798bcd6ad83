// Tests of stop_matcher: stop strings split across feeds, several stop strings, partial matches that fail, a stop at
// the very start, multi-byte UTF-8 around stops, flush, and that every way of cutting a text into feeds gives the
// same output.
#include "core/check.h"
#include "sampling/stop.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace specattn {
namespace {

// Feeds the pieces in order and returns everything shown, flush included.
std::string run(stop_matcher & m, const std::vector<std::string> & pieces, bool & stopped) {
    std::string out;
    stopped = false;
    for (const std::string & piece : pieces) {
        out += m.feed(piece, stopped);
    }
    out += m.flush();
    return out;
}

TEST(stop_matcher, no_stops_passes_everything) {
    stop_matcher m({});
    bool stopped = true;
    EXPECT_EQ(m.feed("hello </s>", stopped), "hello </s>");
    EXPECT_FALSE(stopped);
    EXPECT_EQ(m.flush(), "");
}

TEST(stop_matcher, stop_split_across_feeds) {
    stop_matcher m({"</s>"});
    bool stopped = true;
    EXPECT_EQ(m.feed("Hello<", stopped), "Hello");
    EXPECT_FALSE(stopped);
    EXPECT_EQ(m.feed("/", stopped), "");
    EXPECT_FALSE(stopped);
    EXPECT_EQ(m.feed("s>tail", stopped), "");
    EXPECT_TRUE(stopped);
    EXPECT_TRUE(m.stopped());
    // Text after the stop is never shown.
    EXPECT_EQ(m.feed("more", stopped), "");
    EXPECT_TRUE(stopped);
    EXPECT_EQ(m.flush(), "");
}

TEST(stop_matcher, stop_inside_one_feed) {
    stop_matcher m({"</s>"});
    bool stopped = false;
    EXPECT_EQ(m.feed("abc</s>def", stopped), "abc");
    EXPECT_TRUE(stopped);
}

TEST(stop_matcher, several_stop_strings) {
    stop_matcher m({"\n\n", "User:"});
    bool stopped = true;
    EXPECT_EQ(m.feed("Hi\nUs", stopped), "Hi\n");
    EXPECT_FALSE(stopped);
    EXPECT_EQ(m.feed("er: x", stopped), "");
    EXPECT_TRUE(stopped);

    stop_matcher m2({"\n\n", "User:"});
    EXPECT_EQ(m2.feed("a\n", stopped), "a");
    EXPECT_EQ(m2.feed("\nUser:", stopped), "");
    EXPECT_TRUE(stopped);
}

TEST(stop_matcher, earliest_stop_wins) {
    // Whatever the order of the list: "b" at byte 1 comes before "abc" at byte 2.
    stop_matcher m({"abc", "b"});
    bool stopped = false;
    EXPECT_EQ(m.feed("xbabc", stopped), "x");
    EXPECT_TRUE(stopped);
    // A short stop that completes inside a longer one still pending.
    stop_matcher m2({"abcdef", "cd"});
    EXPECT_EQ(m2.feed("ab", stopped), "");
    EXPECT_EQ(m2.feed("cd", stopped), "ab");
    EXPECT_TRUE(stopped);
}

TEST(stop_matcher, failed_partial_match_is_released) {
    stop_matcher m({"</s>"});
    bool stopped = true;
    EXPECT_EQ(m.feed("a</", stopped), "a");
    EXPECT_EQ(m.feed("b>", stopped), "</b>");
    EXPECT_FALSE(stopped);
    EXPECT_EQ(m.feed("<", stopped), "");
    EXPECT_EQ(m.feed("<", stopped), "<"); // the first '<' cannot start "</s>" any more, the second still can
    EXPECT_EQ(m.flush(), "<");
    EXPECT_EQ(m.flush(), "");
}

TEST(stop_matcher, overlapping_prefix) {
    // "aaa" holds "aa" (it could begin "aab"); the first 'a' is safe. "b" completes the stop at byte 1, so nothing
    // more is shown: "a" is all of "aaab" before the stop.
    stop_matcher m({"aab"});
    bool stopped = false;
    EXPECT_EQ(m.feed("aaa", stopped), "a");
    EXPECT_EQ(m.feed("b", stopped), "");
    EXPECT_TRUE(stopped);
}

TEST(stop_matcher, stop_at_the_very_start) {
    stop_matcher m({"</s>"});
    bool stopped = false;
    EXPECT_EQ(m.feed("</s>hello", stopped), "");
    EXPECT_TRUE(stopped);

    stop_matcher m2({"###"});
    std::string out;
    for (const char * piece : {"#", "#", "#", "after"}) {
        out += m2.feed(piece, stopped);
    }
    EXPECT_EQ(out, "");
    EXPECT_TRUE(stopped);
}

TEST(stop_matcher, flush_returns_held_text) {
    stop_matcher m({"<|im_end|>"});
    bool stopped = true;
    EXPECT_EQ(m.feed("answer <|im", stopped), "answer ");
    EXPECT_FALSE(stopped);
    EXPECT_EQ(m.flush(), "<|im");
}

TEST(stop_matcher, utf8_multibyte_stop_fed_byte_by_byte) {
    // "你好。世界" with stop "。" (E3 80 82): none of the stop's bytes may leak out.
    const std::string text = "\xe4\xbd\xa0\xe5\xa5\xbd\xe3\x80\x82\xe4\xb8\x96\xe7\x95\x8c";
    stop_matcher m({"\xe3\x80\x82"});
    std::string out;
    bool stopped = false;
    for (char c : text) {
        out += m.feed(std::string(1, c), stopped);
    }
    EXPECT_TRUE(stopped);
    EXPECT_EQ(out, "\xe4\xbd\xa0\xe5\xa5\xbd");
}

TEST(stop_matcher, utf8_character_split_before_a_stop) {
    // "café<end>" with é (C3 A9) cut between feeds.
    stop_matcher m({"<end>"});
    bool stopped = false;
    const std::string out = run(m, {"caf\xc3", "\xa9<en", "d>!"}, stopped);
    EXPECT_TRUE(stopped);
    EXPECT_EQ(out, "caf\xc3\xa9");
}

TEST(stop_matcher, utf8_lead_byte_shared_with_stop) {
    // Stop "ü!" is C3 BC 21; "é" is C3 A9. The lone C3 is held, then released whole.
    stop_matcher m({"\xc3\xbc!"});
    bool stopped = true;
    EXPECT_EQ(m.feed("x\xc3", stopped), "x");
    EXPECT_EQ(m.feed("\xa9 \xc3\xbc", stopped), "\xc3\xa9 ");
    EXPECT_EQ(m.feed("?", stopped), "\xc3\xbc?");
    EXPECT_FALSE(stopped);
    EXPECT_EQ(m.feed("\xc3\xbc!", stopped), "");
    EXPECT_TRUE(stopped);
}

TEST(stop_matcher, every_split_gives_the_same_output) {
    const std::string dash = "\xe2\x80\x94"; // U+2014, spelled apart so "\x94e..." is not one hex escape
    const std::vector<std::string> stops = {"<|im_end|>", "\n\nUser", dash + "end"};
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"Hello <|im_en d <|im_end|> tail", "Hello <|im_en d "},
        {"caf\xc3\xa9\n\nUse \n\nUser: hi", "caf\xc3\xa9\n\nUse "},
        {"a " + dash + " b " + dash + "end c", "a " + dash + " b "},
        {"no stop here <|im_end", "no stop here <|im_end"},
    };
    for (const auto & [text, want] : cases) {
        for (size_t i = 0; i <= text.size(); i++) {
            for (size_t j = i; j <= text.size(); j++) {
                stop_matcher m(stops);
                bool stopped = false;
                const std::string got = run(m, {text.substr(0, i), text.substr(i, j - i), text.substr(j)}, stopped);
                EXPECT_EQ(got, want) << "cuts at " << i << ", " << j;
                EXPECT_EQ(stopped, want != text);
            }
        }
    }
}

TEST(stop_matcher, empty_stop_string_is_an_error) {
    EXPECT_THROW(stop_matcher({""}), error);
    EXPECT_THROW(stop_matcher({"</s>", ""}), error);
}

} // namespace
} // namespace specattn
