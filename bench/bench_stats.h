// The summary both device benchmarks print of a set of timings: the median (robust to the odd slow launch) and
// the standard deviation.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

namespace specattn {

// (median, standard deviation) of the samples; sorts them.
inline std::pair<double, double> median_and_std(std::vector<double> & v) {
    std::sort(v.begin(), v.end());
    const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    double var = 0;
    for (double x : v) {
        var += (x - mean) * (x - mean);
    }
    return {v[v.size() / 2], std::sqrt(var / static_cast<double>(v.size()))};
}

} // namespace specattn
