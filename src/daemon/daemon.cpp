#include "daemon.hpp"

#include "counters.hpp"
#include "static_runtime.hpp"
#include "xdpfwd/control_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <optional>
#include <cstring>

namespace xdpfwd {

Daemon::Daemon(config::Config config, nlohmann::json document)
    : config_(std::move(config)), document_(std::move(document)) {}

// The XDP path first, so no frame is sent into a veth being removed; then the inspectors, then
// their namespaces.
Daemon::~Daemon() {
  host_xdp_.reset();
  inspectors_.reset();
  runtime_.reset();
}

void Daemon::bring_up() {
  if (config_.runtime != config::Runtime::Static)
    throw std::runtime_error("runtime \"docker\" is not available in this version; use \"static\"");
  host_xdp_ = std::make_unique<HostXdp>(config_.pin_dir);
  runtime_ = std::make_unique<StaticRuntime>(config_.underlay_local);
  inspectors_ = std::make_unique<IngressSupervisor>(
      io_, IngressSupervisor::Settings{IngressSupervisor::default_binary(), config_.control_socket, config_.log_level});
  inspectors_->set_config(document_);

  // Maps first, attach last: the program starts with every service in place.
  for (const auto& ingress : config_.ingresses) {
    const IngressEndpoint endpoint = runtime_->start(ingress);
    inspectors_->start(ingress.name, StaticRuntime::netns_name(ingress.name));
    host_xdp_->add_ingress_dev(endpoint.host_ifindex);
    for (const auto& ip : ingress.service_ips) {
      xdpfwd_service_value target{};
      target.ifindex = static_cast<__u32>(endpoint.host_ifindex);
      target.stats_index = service_ip_count_++;
      std::memcpy(target.dst_mac, endpoint.ingress_mac.data(), sizeof(target.dst_mac));
      std::memcpy(target.src_mac, endpoint.host_mac.data(), sizeof(target.src_mac));
      host_xdp_->set_service(ip, target);
      spdlog::info("ingress {}: service IP {} -> {}", ingress.name, ip.to_string(),
                   StaticRuntime::host_veth_name(ingress.name));
    }
  }
  for (const auto& interface : config_.interfaces) host_xdp_->attach(interface);
}

void Daemon::log_counters() const {
  const Counters counters = collect_counters(config_, host_xdp_->services_fd(), host_xdp_->service_stats_fd(),
                                             host_xdp_->malformed_fd());
  for (const auto& service : counters.services)
    spdlog::info("ingress {}: service IP {}: {} packets, {} bytes, {} redirect errors, {} malformed", service.ingress,
                 service.address.to_string(), service.counters.packets, service.counters.bytes,
                 service.counters.redirect_errors, service.counters.malformed);
  for (int reason = 0; reason < XDPFWD_MALFORMED_REASONS; ++reason)
    if (counters.malformed[reason] != 0)
      spdlog::info("malformed frames ({}): {}", malformed_reason_name(reason), counters.malformed[reason]);
}

nlohmann::json Daemon::handle_control(const nlohmann::json& request) {
  const std::string op = request.value("op", "");
  if (op == "status") return {{"ok", true}, {"status", status()}};
  return {{"ok", false}, {"error", "unknown op \"" + op + "\""}};
}

nlohmann::json Daemon::status() const {
  const Counters counters = collect_counters(config_, host_xdp_->services_fd(), host_xdp_->service_stats_fd(),
                                             host_xdp_->malformed_fd());
  nlohmann::json ingresses = nlohmann::json::array();
  for (const auto& ingress : config_.ingresses) {
    nlohmann::json service_ips = nlohmann::json::array();
    for (const auto& service : counters.services) {
      if (service.ingress != ingress.name) continue;
      service_ips.push_back({{"address", service.address.to_string()},
                             {"packets", service.counters.packets},
                             {"bytes", service.counters.bytes},
                             {"redirect_errors", service.counters.redirect_errors},
                             {"malformed", service.counters.malformed}});
    }
    ingresses.push_back({{"name", ingress.name},
                         {"netns", StaticRuntime::netns_name(ingress.name)},
                         {"vni", ingress.overlay.vni},
                         {"service_ips", service_ips},
                         {"inspector", inspectors_->status(ingress.name)}});
  }
  nlohmann::json malformed = nlohmann::json::object();
  for (int reason = 0; reason < XDPFWD_MALFORMED_REASONS; ++reason)
    malformed[std::string(malformed_reason_name(reason))] = counters.malformed[reason];
  return {{"ingresses", ingresses}, {"malformed", malformed}};
}

int Daemon::run() {
  boost::asio::signal_set signals(io_, SIGTERM, SIGINT, SIGHUP);
  int exit_code = 0;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& error, int signal) {
        if (error) return;
        if (signal == SIGHUP) {
          spdlog::warn("SIGHUP: reloading is not implemented yet; restart xdpfwd to apply a changed config");
          signals.async_wait(on_signal);
          return;
        }
        spdlog::info("{}: shutting down", strsignal(signal));
        io_.stop();
      };
  signals.async_wait(on_signal);

  try {
    bring_up();
  } catch (const std::exception& error) {
    spdlog::critical("start-up failed: {}", error.what());
    return 1;
  }
  std::optional<ControlServer> control;
  try {
    control.emplace(io_, config_.control_socket, [this](const nlohmann::json& request) { return handle_control(request); });
  } catch (const std::exception& error) {
    spdlog::critical("control socket {}: {}", config_.control_socket, error.what());
    return 1;
  }
  sd_notify(0, "READY=1\nSTATUS=forwarding");
  spdlog::info("ready: {} ingresses, {} service IPs", config_.ingresses.size(), service_ip_count_);
  io_.run();

  sd_notify(0, "STOPPING=1");
  try {
    log_counters();
  } catch (const std::exception& error) {
    spdlog::error("reading the counters failed: {}", error.what());
    exit_code = 1;
  }
  return exit_code;
}

} // namespace xdpfwd
