// Stop strings for streamed text. Generated text arrives in pieces (one detokenized token at a time) and a stop
// string may be split across them, so the matcher holds back any tail that could still grow into a stop string and
// shows only text that can no longer be part of one. The stop string itself is never shown.
//
// Works on bytes: UTF-8 passes through unchanged, and since UTF-8 is self-synchronizing a stop string that is valid
// UTF-8 can only match on character boundaries of valid UTF-8 text. A piece may end inside a character (byte-level
// tokens do); those bytes are passed on as they are, held back only when they could begin a stop string.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace specattn {

class stop_matcher {
  public:
    // Throws specattn::error if any stop string is empty. No stop strings: everything passes straight through.
    explicit stop_matcher(std::vector<std::string> stops);

    // Feeds newly generated text; returns the text that is safe to show now. stopped is set to whether a stop string
    // has completed; when it does, the returned text ends right before the earliest one, and every later feed and
    // flush returns "".
    std::string feed(std::string_view text, bool & stopped);

    // At the end of generation: the text held back (it did not become a stop string). Empty after a stop.
    std::string flush();

    bool stopped() const { return stopped_; }

  private:
    std::vector<std::string> stops_;
    std::string held_;   // bytes that could still be the start of a stop string
    size_t max_len_ = 0; // longest stop string, in bytes
    bool stopped_ = false;
};

} // namespace specattn
