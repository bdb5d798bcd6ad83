// Stop-string matching over streamed text; see stop.h. Each feed searches the held tail plus the new text, which is
// at most (longest stop - 1) + |text| bytes, so streaming stays linear in the generated length.
#include "sampling/stop.h"

#include "core/check.h"

#include <algorithm>
#include <utility>

namespace specattn {

stop_matcher::stop_matcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
    for (const std::string & s : stops_) {
        // An empty stop string would match before any text and stop every generation at once.
        SPECATTN_CHECK(!s.empty(), "stop strings must not be empty");
        max_len_ = std::max(max_len_, s.size());
    }
}

std::string stop_matcher::feed(std::string_view text, bool & stopped) {
    if (stopped_) {
        stopped = true;
        return "";
    }
    std::string buf = std::move(held_);
    held_.clear();
    buf.append(text);

    // The earliest completed stop string wins; with several starting at the same byte, the output is the same.
    size_t stop_at = std::string::npos;
    for (const std::string & s : stops_) {
        stop_at = std::min(stop_at, buf.find(s));
    }
    if (stop_at != std::string::npos) {
        stopped_ = true;
        stopped = true;
        buf.resize(stop_at);
        return buf;
    }

    // Hold back the longest tail that is a proper prefix of some stop string. Bytes before it cannot begin a stop
    // string whatever comes next: no stop string starts there complete, and none fits the text that follows.
    size_t keep_from = buf.size();
    const size_t first = buf.size() >= max_len_ ? buf.size() - max_len_ + 1 : 0;
    for (size_t i = first; i < buf.size() && keep_from == buf.size(); i++) {
        const size_t n_tail = buf.size() - i;
        for (const std::string & s : stops_) {
            if (s.size() > n_tail && s.compare(0, n_tail, buf, i, n_tail) == 0) {
                keep_from = i;
                break;
            }
        }
    }
    held_.assign(buf, keep_from, std::string::npos);
    buf.resize(keep_from);
    stopped = false;
    return buf;
}

std::string stop_matcher::flush() {
    std::string out = std::move(held_);
    held_.clear();
    return out;
}

} // namespace specattn
