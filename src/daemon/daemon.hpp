// The daemon's life: bring up the ingresses and the XDP path from a validated config, report
// readiness, keep them in step with the config file (SIGHUP, `xdpfwdctl reload`, or the file
// changing), answer xdpfwdctl, and on SIGTERM/SIGINT remove all it created.
#pragma once

#include "config_watch.hpp"
#include "host_xdp.hpp"
#include "ingress_runtime.hpp"
#include "ingress_supervisor.hpp"
#include "metrics_server.hpp"
#include "redirect_drops.hpp"
#include "xdpfwd/config.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <array>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace xdpfwd {

namespace docker {
class DockerRuntime;
class ReplicaWatcher;
} // namespace docker

class Daemon {
public:
  // config was parsed from document, which was read from file (reloads read it again).
  Daemon(std::filesystem::path file, config::Config config, nlohmann::json document);
  ~Daemon();
  // Returns the process exit code.
  int run();

private:
  // An ingress as it runs: its config and where its service IPs count in service_stats.
  struct RunningIngress {
    config::Ingress config;
    IngressEndpoint endpoint;
    std::vector<std::uint32_t> stats_slots; // parallel to config.service_ips
  };
  struct ReloadResult {
    std::vector<std::string> errors; // empty: applied (or nothing to apply)
    std::vector<std::string> changes;
  };

  void bring_up();
  // Takes over what a previous run left on purpose (a restart) or by dying (SIGKILL), as its
  // state file describes; false when there is nothing to adopt.
  bool adopt_previous_run();
  void add_ingress(const config::Ingress& ingress);
  void remove_ingress(const std::string& name);
  // Reads the file again, validates it and applies what changed; a file with errors changes
  // nothing. why: what asked for it, for the log.
  ReloadResult reload(const std::string& why);
  void log_counters() const;
  // The runtime of config_.runtime (and, for docker, docker_ pointing at it).
  void make_runtime();
  // The inspector document (inspector_document of doc) for every later configure.
  void set_inspector_config(const nlohmann::json& doc);
  // Starts (static: forks it; docker: it is the container's entrypoint) and configures the
  // ingress's inspector; adopt keeps one a previous run left.
  void start_inspector(const std::string& name, bool adopt = false);
  void configure_inspector(const std::string& name);
  // runtime docker: the document pushed to ingress name's container (see daemon.cpp), or null
  // when it would not be valid yet (a service without replicas left none to route to).
  nlohmann::json docker_inspector_document(const std::string& name) const;
  // runtime docker: the replica watcher follows the services of the ingresses running now.
  void watch_replicas();
  // runtime docker: reads the replicas of an ingress's services once, synchronously.
  void read_replicas(const std::string& name);
  // runtime docker: the ingress container died; it is restarted, re-plumbed and configured.
  void repair_ingress(const std::string& name);
  void set_endpoint(RunningIngress& running, const IngressEndpoint& endpoint);
  // Answers xdpfwdctl on the control socket.
  nlohmann::json handle_control(const nlohmann::json& request);
  nlohmann::json status() const;
  std::uint32_t take_stats_slot();
  // `xdpfwdctl drain|undrain INGRESS SERVICE REPLICA`: the replica takes no new flows (weight 0)
  // until undrained, whatever the file says; kept across reloads and restarts.
  nlohmann::json set_drained(const nlohmann::json& request, bool drained);
  // The document the inspectors get: a services.json document with drained replicas at weight 0.
  nlohmann::json inspector_document(nlohmann::json document) const;
  // The state file: the applied document and where each ingress counts (next to the control
  // socket, in the runtime directory that survives restarts).
  std::filesystem::path state_path() const;
  void save_state() const;
  // The end: everything removed, or (a restart) left running for the next daemon.
  void shut_down();
  // Feeds systemd's watchdog from the main loop, when the unit asks for it (WatchdogSec=).
  void start_watchdog();
  void feed_watchdog();

  std::filesystem::path file_;
  config::Config config_;
  nlohmann::json document_;
  std::uint64_t generation_ = 1; // of the configuration applied
  std::uint64_t reloads_applied_ = 0;
  std::uint64_t reloads_rejected_ = 0;
  bool keep_on_stop_ = false; // `xdpfwdctl prepare-restart`
  std::set<std::array<std::string, 3>> drained_; // {ingress, service, replica address}
  boost::asio::io_context io_;
  std::unique_ptr<HostXdp> host_xdp_;
  std::unique_ptr<RedirectDrops> redirect_drops_;
  std::unique_ptr<IngressRuntime> runtime_;
  std::unique_ptr<IngressSupervisor> inspectors_;
  docker::DockerRuntime* docker_ = nullptr; // runtime_, when it is the docker one
  std::unique_ptr<docker::ReplicaWatcher> watcher_;
  bool docker_engine_lost_ = false; // the watcher lost the engine: repair the ingresses when it is back
  nlohmann::json pushed_document_;          // inspector_document(document), set_inspector_config
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> docker_replicas_; // {ingress, service}
  std::unique_ptr<ConfigWatch> watch_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<boost::asio::steady_timer> watchdog_;
  std::chrono::microseconds watchdog_period_{0};
  std::map<std::string, RunningIngress> running_;
  std::vector<std::uint32_t> free_stats_slots_;
  std::uint32_t next_stats_slot_ = 0;
};

} // namespace xdpfwd
