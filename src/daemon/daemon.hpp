// The daemon's life: bring up the ingresses and the XDP path from a validated config, report
// readiness, run until SIGTERM/SIGINT, then remove all it created.
#pragma once

#include "host_xdp.hpp"
#include "ingress_runtime.hpp"
#include "ingress_supervisor.hpp"
#include "xdpfwd/config.hpp"

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <vector>

namespace xdpfwd {

class Daemon {
public:
  // document: the services.json that config was parsed from; each inspector gets it whole.
  Daemon(config::Config config, nlohmann::json document);
  ~Daemon();
  // Returns the process exit code.
  int run();

private:
  void bring_up();
  void log_counters() const;
  // Answers xdpfwdctl on the control socket.
  nlohmann::json handle_control(const nlohmann::json& request);
  nlohmann::json status() const;

  config::Config config_;
  nlohmann::json document_;
  boost::asio::io_context io_;
  std::unique_ptr<HostXdp> host_xdp_;
  std::unique_ptr<IngressRuntime> runtime_;
  std::unique_ptr<IngressSupervisor> inspectors_;
  std::uint32_t service_ip_count_ = 0; // also the next free slot in service_stats
};

} // namespace xdpfwd
