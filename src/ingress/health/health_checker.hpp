// Health checks of the replicas of an ingress's services (services.json `health_check`), run by
// the inspector from inside the ingress netns so that probes take the path traffic takes (the
// overlay). Everything runs on one io_context: no thread per probe, timers for the timeouts.
//
// Semantics
// - State per replica: healthy or down. A replica starts HEALTHY, at start-up and when it joins
//   later: traffic flows at once (the balancers add replicas healthy too), and a replica that is
//   in fact dead leaves within fall × interval + timeout (its first probe comes within one
//   interval, jittered), which is what the issue asks. "Unknown until rise successes" would instead
//   keep a fresh ingress — or a freshly scaled-up service — dark for rise × interval.
// - `fall` consecutive failed probes take a healthy replica down; `rise` consecutive successful
//   probes bring a down replica back. Every change of state calls the Callback (never the
//   initial healthy state, never a removal).
// - One probe per replica per interval, at a fixed rate from the start of the previous probe (a
//   probe never overlaps the next one: the next starts no earlier than when this one ended). The
//   first probe of each replica is delayed by a random part of the interval, so that replicas
//   do not probe in lockstep.
// - Probes (a fresh socket each, never bound: an ephemeral source port of the calling thread's
//   network namespace):
//     tcp   connected within timeout_ms; then closed.
//     http  connected, "GET http_path HTTP/1.1" (Host, Connection: close, User-Agent:
//           xdpfwd-health) sent, status line read (at most kMaxHttpHead bytes) within timeout_ms
//           of the probe's start; healthy iff the status is http_expect_status.
//     udp   the datagram "xdpfwd-health" sent on a connected socket; healthy iff any datagram
//           comes back within timeout_ms. UDP services must therefore answer it (echo, or any
//           reply). An ICMP port unreachable (ECONNREFUSED) fails the probe at once.
//     dns   a standard query (RD set) for Options::dns_query_name / dns_query_type (default ". NS",
//           which every resolver and most authoritative servers answer); healthy iff a DNS response
//           with the query's ID arrives within timeout_ms and its RCODE is not SERVFAIL. NXDOMAIN
//           and REFUSED count as healthy: the server is up and answering, and the probe name may
//           well be outside its zones. ICMP port unreachable fails at once, as for udp.
// - A service without health_check: its replicas are always healthy, nothing is probed.
// - All replicas down: when every replica of a service (at least one) is down, this is logged
//   once at error level and counted (all_down_events); its end is logged at info level.
// - set_targets() again (reconfigure): replicas that stay keep their state and counters; new
//   ones start healthy with a jittered first probe; removed ones are dropped silently. When the
//   check itself changes, kept replicas keep healthy/down but their consecutive counts restart
//   and their probes restart with the new settings. When the check is removed, down replicas
//   come back up (Callback with healthy = true).
//
// Threads: every member function, the Callback and destruction on the io_context's thread (or
// before it runs). The Callback may run inside set_targets() (a removed check); it may query the
// checker (the state is already updated) but must not change it (set_targets, remove_service,
// configure, destruction): post such work instead.
#pragma once

#include "xdpfwd/config.hpp"

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace xdpfwd::ingress::health {

class Prober;
struct ProbeResult;

struct Options {
  std::string dns_query_name = ".";  // dns probes ask for this name ...
  std::uint16_t dns_query_type = 2;  // ... and this type (2: NS; 1: A)
};

// Monotonic while the service exists (reset when it is removed).
struct ServiceCounters {
  std::uint64_t probes = 0;          // probes completed
  std::uint64_t failures = 0;        // of which failed
  std::uint64_t transitions = 0;     // replica state changes, either way
  std::uint64_t all_down_events = 0; // times every replica of the service went down
};

struct ReplicaStatus {
  config::IpAddress address;
  bool healthy = true;
  bool checked = false; // false: the service has no health check
  std::uint32_t consecutive_successes = 0;
  std::uint32_t consecutive_failures = 0;
  std::uint64_t probes = 0;
  std::uint64_t failures = 0;
  std::string last_error;                 // of the last failed probe; empty before any
  std::optional<double> last_latency_ms;  // of the last probe, failed or not
};

struct ReplicaHealth {
  std::string service;
  config::IpAddress address;
  bool healthy = true;
};

class HealthChecker {
public:
  using Callback = std::function<void(const std::string& service, const config::IpAddress& replica, bool healthy)>;

  HealthChecker(boost::asio::io_context& io, Callback on_change, Options options = {});
  // Cancels every probe; handlers still queued on the io_context find them stopped.
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Sets one service's check and replicas (repeated addresses count once). See "Semantics".
  void set_targets(const std::string& service, const std::optional<config::HealthCheck>& check,
                   const std::vector<config::IpAddress>& replicas);
  // Forgets a service and stops its probes; no Callback.
  void remove_service(const std::string& service);
  // Every service of the ingress with its configured replicas (runtime static), and
  // remove_service() for the services the ingress no longer has.
  void configure(const config::Ingress& ingress);

  // Queries; nullopt for an unknown service or replica.
  std::optional<bool> healthy(const std::string& service, const config::IpAddress& replica) const;
  std::optional<ReplicaStatus> replica_status(const std::string& service, const config::IpAddress& replica) const;
  std::optional<ServiceCounters> counters(const std::string& service) const;
  std::optional<bool> all_down(const std::string& service) const;
  // Every replica's state, for re-applying it after the data path rebuilt a balancer.
  std::vector<ReplicaHealth> health() const;
  // {"services": [{"name", "check": {...} | null, "all_down", "probes", "failures", "transitions",
  //   "all_down_events", "replicas": [{"address", "healthy", "consecutive_successes",
  //   "consecutive_failures", "probes", "failures", "last_error", "last_latency_ms" | null}]}]}
  nlohmann::json status() const;

private:
  struct Replica;
  struct Service;

  Service* find(const std::string& name);
  const Service* find(const std::string& name) const;
  void start_probe(Service& service, Replica& replica);
  void on_result(const std::string& service, const config::IpAddress& address, const ProbeResult& result);
  void update_all_down(Service& service);
  void notify(const std::string& service, const config::IpAddress& replica, bool healthy);

  boost::asio::io_context& io_;
  Callback on_change_;
  Options options_;
  std::vector<std::unique_ptr<Service>> services_;
  std::minstd_rand random_;
};

} // namespace xdpfwd::ingress::health
