// The daemon's life: bring up the ingresses and the XDP path from a validated config, report
// readiness, run until SIGTERM/SIGINT, then remove all it created.
#pragma once

#include "host_xdp.hpp"
#include "ingress_runtime.hpp"
#include "xdpfwd/config.hpp"

#include <memory>
#include <vector>

namespace xdpfwd {

class Daemon {
public:
  explicit Daemon(config::Config config);
  ~Daemon();
  // Returns the process exit code.
  int run();

private:
  void bring_up();
  void log_counters() const;

  config::Config config_;
  std::unique_ptr<HostXdp> host_xdp_;
  std::unique_ptr<IngressRuntime> runtime_;
  std::uint32_t service_ip_count_ = 0; // also the next free slot in service_stats
};

} // namespace xdpfwd
