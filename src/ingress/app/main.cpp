// xdpfwd-ingress: the inspector of one ingress, started by the daemon inside the ingress netns.
//   xdpfwd-ingress --ingress NAME --control SOCKET [--log-level LEVEL]
//                  [--client-interface NAME (eth0)] [--overlay-interface NAME (ovl0)]
//                  [--transport auto|af_xdp|af_packet (auto, or $XDPFWD_INGRESS_TRANSPORT)]
// It listens on SOCKET and waits for the daemon's first "configure" (the whole services.json and
// which ingress is its own), builds the data path, drops to nobody with CAP_NET_ADMIN and
// CAP_NET_BIND_SERVICE only (privileges.hpp), then runs it; later "configure"s are applied
// without a restart, "status" reports counters. SIGTERM/SIGINT stop it.
#include "xdpfwd/control_server.hpp"
#include "datapath.hpp"
#include "health_checker.hpp"
#include "domain_proxy.hpp"
#include "privileges.hpp"
#include "xdpfwd/config.hpp"
#include "xdpfwd/ingress_control.hpp"
#include "xdpfwd/log.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <future>
#include <iostream>
#include <memory>
#include <thread>

namespace {

using xdpfwd::ingress::DataPath;
using nlohmann::json;

struct Options {
  std::string ingress;
  std::string control;
  std::string log_level = "info";
  DataPath::Interfaces interfaces;
  DataPath::Transport transport = DataPath::Transport::Auto;
};

DataPath::Transport parse_transport(const std::string& value) {
  const auto transport = DataPath::parse_transport(value);
  if (!transport) throw std::invalid_argument("transport \"" + value + "\": expected auto, af_xdp or af_packet");
  return *transport;
}

Options parse_arguments(int argc, char** argv) {
  Options options;
  // The daemon's environment reaches the inspectors it starts: one knob for all of them.
  if (const std::string transport = xdpfwd::ingress_transport_from_environment(); !transport.empty())
    options.transport = parse_transport(transport);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--ingress") options.ingress = value;
    else if (arg == "--control") options.control = value;
    else if (arg == "--log-level") options.log_level = value;
    else if (arg == "--client-interface") options.interfaces.client = value;
    else if (arg == "--overlay-interface") options.interfaces.overlay = value;
    else if (arg == "--transport") options.transport = parse_transport(value);
    else throw std::invalid_argument("unknown argument " + arg);
  }
  if (options.ingress.empty() || options.control.empty())
    throw std::invalid_argument("usage: xdpfwd-ingress --ingress NAME --control SOCKET [--log-level LEVEL] "
                                "[--client-interface NAME] [--overlay-interface NAME] [--transport auto|af_xdp|af_packet]");
  return options;
}

// Each terminated connection holds up to six descriptors: take the hard limit, not the soft 1024
// a service manager usually leaves.
void raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) spdlog::warn("raise the descriptor limit: {}", std::strerror(errno));
}

// The inspector: the data path once configured, the domain proxy and the health checks (on the
// io_context of the control socket, this thread), and the control requests that reach them.
class Inspector {
public:
  Inspector(boost::asio::io_context& io, std::string name, DataPath::Interfaces interfaces,
            DataPath::Transport transport)
      : io_(io), name_(std::move(name)), interfaces_(std::move(interfaces)), transport_(transport), proxy_(io),
        health_(io, [this](const std::string& service, const xdpfwd::config::IpAddress& replica, bool healthy) {
          apply_health({{service, replica, healthy}});
        }) {}
  ~Inspector() { stop(); }

  json handle(const json& request) {
    const std::string op = request.value("op", "");
    if (op == "configure") return configure(request);
    if (op == "status") {
      json answer = on_datapath([this] { return json{{"ok", true}, {"status", datapath_->status()}}; });
      if (answer.value("ok", false)) {
        answer["status"]["proxy"] = proxy_.status();
        answer["status"]["health"] = health_.status();
      }
      return answer;
    }
    return {{"ok", false}, {"error", "unknown op \"" + op + "\""}};
  }

  void stop() {
    proxy_.stop();
    if (!datapath_) return;
    datapath_->stop();
    thread_.join();
    datapath_.reset();
  }

  // Why the inspector stopped on its own (it could not drop its privileges); empty otherwise.
  const std::string& failure() const { return failure_; }

private:
  json configure(const json& request) {
    if (request.value("ingress", "") != name_)
      return {{"ok", false}, {"error", "this is the inspector of ingress " + name_}};
    auto parsed = xdpfwd::config::parse(request.at("config").dump());
    if (!parsed.config) {
      std::string errors;
      for (const auto& error : parsed.errors) errors += (errors.empty() ? "" : "; ") + to_string(error);
      return {{"ok", false}, {"error", "invalid config: " + errors}};
    }
    const auto& ingresses = parsed.config->ingresses;
    const auto own = std::find_if(ingresses.begin(), ingresses.end(), [&](const auto& i) { return i.name == name_; });
    if (own == ingresses.end()) return {{"ok", false}, {"error", "the config has no ingress " + name_}};
    // The proxy listens before the data path hands the terminated ports to the kernel.
    try {
      proxy_.configure(*own);
    } catch (const std::exception& error) {
      return {{"ok", false}, {"error", std::string("domain proxy: ") + error.what()}};
    }
    // Balancers a configure builds anew take every replica as healthy: the checks' verdicts
    // go back onto them with the configuration, in the same data path task.
    health_.configure(*own);
    const auto verdicts = health_.health();
    for (const auto& verdict : verdicts) proxy_.set_replica_health(verdict.service, verdict.address, verdict.healthy);
    const bool first = !datapath_;
    if (first) {
      datapath_ = std::make_unique<DataPath>(*own, interfaces_, transport_);
      if (!drop_root()) return {{"ok", false}, {"error", failure_}};
      thread_ = std::thread([this] { datapath_->run(); });
    }
    return on_datapath([this, ingress = *own, verdicts, first] {
      datapath_->configure(ingress); // also resolves the replicas
      for (const auto& verdict : verdicts) datapath_->set_replica_health(verdict.service, verdict.address, verdict.healthy);
      if (!first) spdlog::info("configuration applied");
      return json{{"ok", true}};
    });
  }

  // Root is needed until the data path is built: loading its BPF programs (the verifier takes
  // CAP_PERFMON), attaching them in place of the daemon's pass program (opening that one by id
  // takes CAP_SYS_ADMIN), the AF_XDP sockets and their UMEM. The data path's thread, which
  // handles the clients' frames, and every later request run unprivileged. An inspector that
  // cannot drop its privileges does not run: it stops, and says why.
  bool drop_root() {
    using namespace xdpfwd::ingress;
    try {
      drop_privileges(kUnprivilegedUid, kUnprivilegedGid, kRuntimeCapabilities);
    } catch (const std::exception& error) {
      failure_ = error.what();
      datapath_.reset(); // detaches its programs, which may still be allowed
      io_.stop();
      return false;
    }
    spdlog::info("running as uid {} gid {} with {} only (also the bounding set; no_new_privs)", kUnprivilegedUid,
                 kUnprivilegedGid, capability_names(kRuntimeCapabilities));
    return true;
  }

  // Health changes reach the proxy here and the data path on its own thread.
  void apply_health(std::vector<xdpfwd::ingress::health::ReplicaHealth> verdicts) {
    for (const auto& verdict : verdicts) proxy_.set_replica_health(verdict.service, verdict.address, verdict.healthy);
    if (datapath_)
      datapath_->post([this, verdicts = std::move(verdicts)] {
        for (const auto& verdict : verdicts) datapath_->set_replica_health(verdict.service, verdict.address, verdict.healthy);
      });
  }

  // Runs fn on the data path's thread and waits (bounded) for its answer.
  json on_datapath(std::function<json()> fn) {
    if (!datapath_) return {{"ok", false}, {"error", "not configured yet"}};
    auto promise = std::make_shared<std::promise<json>>();
    auto answer = promise->get_future();
    datapath_->post([promise, fn = std::move(fn)] {
      try {
        promise->set_value(fn());
      } catch (const std::exception& error) {
        promise->set_value({{"ok", false}, {"error", error.what()}});
      }
    });
    if (answer.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
      return {{"ok", false}, {"error", "the data path did not answer within 5 s"}};
    return answer.get();
  }

  boost::asio::io_context& io_;
  std::string name_;
  DataPath::Interfaces interfaces_;
  DataPath::Transport transport_;
  xdpfwd::ingress::DomainProxy proxy_;
  xdpfwd::ingress::health::HealthChecker health_;
  std::unique_ptr<DataPath> datapath_;
  std::thread thread_;
  std::string failure_;
};

} // namespace

int main(int argc, char** argv) {
  try {
    const Options options = parse_arguments(argc, argv);
    xdpfwd::setup_logging(options.log_level, "ingress " + options.ingress);
    xdpfwd::route_bpf_library_logs();
    raise_descriptor_limit();
    boost::asio::io_context io;
    Inspector inspector(io, options.ingress, options.interfaces, options.transport);
    xdpfwd::ControlServer control(io, options.control, [&](const json& request) { return inspector.handle(request); });
    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code&, int signal) {
      spdlog::info("{}: stopping", strsignal(signal));
      io.stop();
    });
    spdlog::info("waiting for the daemon on {}", options.control);
    io.run();
    inspector.stop();
    if (!inspector.failure().empty()) throw std::runtime_error(inspector.failure());
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "xdpfwd-ingress: " << error.what() << "\n";
    return 1;
  }
}
