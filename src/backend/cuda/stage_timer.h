// Where a forward pass's device time goes, by stage, for performance work: SPECATTN_CUDA_PROFILE=1 makes the CUDA
// backend record an event after each stage and print, when it is destroyed, the device time per stage (the time
// between an event and the one before it) summed over all passes, and the host time spent preparing passes.
// Off by default: the events themselves cost a little.
#pragma once

#include <cuda_runtime_api.h>

#include <map>
#include <string>
#include <vector>

namespace specattn {

class stage_timer {
  public:
    stage_timer();
    ~stage_timer();
    bool on() const { return on_; }
    // Starts a pass (records the first event).
    void begin(cudaStream_t stream);
    // The device work enqueued since the previous mark belongs to `stage`.
    void mark(const char * stage, cudaStream_t stream);
    // After the pass's synchronization: accumulates the pass.
    void end(double host_prepare_s);

  private:
    bool on_ = false;
    std::vector<cudaEvent_t> pool_;
    std::vector<const char *> names_;
    size_t used_ = 0;
    std::map<std::string, double> total_ms_;
    double host_s_ = 0.0;
    long passes_ = 0;
};

} // namespace specattn
