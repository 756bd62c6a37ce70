#include "health_checker.hpp"

#include "prober.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace xdpfwd::ingress::health {

struct HealthChecker::Replica {
  config::IpAddress address;
  bool healthy = true;
  std::uint32_t consecutive_successes = 0;
  std::uint32_t consecutive_failures = 0;
  std::uint64_t probes = 0;
  std::uint64_t failures = 0;
  std::string last_error;
  std::optional<double> last_latency_ms;
  std::shared_ptr<Prober> prober; // set while the service has a check

  void stop_probe() {
    if (prober) prober->stop();
    prober.reset();
  }
};

struct HealthChecker::Service {
  std::string name;
  std::optional<config::HealthCheck> check;
  std::vector<Replica> replicas;
  ServiceCounters counters;
  bool all_down = false;

  Replica* find(const config::IpAddress& address) {
    const auto it = std::find_if(replicas.begin(), replicas.end(), [&](const Replica& r) { return r.address == address; });
    return it == replicas.end() ? nullptr : &*it;
  }
  void stop_probes() {
    for (auto& replica : replicas) replica.stop_probe();
  }
};

namespace {

bool same_check(const config::HealthCheck& a, const config::HealthCheck& b) {
  return a.type == b.type && a.port == b.port && a.interval_ms == b.interval_ms && a.timeout_ms == b.timeout_ms &&
         a.fall == b.fall && a.rise == b.rise && a.http_path == b.http_path &&
         a.http_expect_status == b.http_expect_status;
}

nlohmann::json check_json(const config::HealthCheck& check) {
  nlohmann::json json = {{"type", config::to_string(check.type)}, {"port", check.port},
                         {"interval_ms", check.interval_ms}, {"timeout_ms", check.timeout_ms},
                         {"fall", check.fall}, {"rise", check.rise}};
  if (check.type == config::HealthCheckType::Http) {
    json["http_path"] = check.http_path;
    json["http_expect_status"] = check.http_expect_status;
  }
  return json;
}

} // namespace

HealthChecker::HealthChecker(boost::asio::io_context& io, Callback on_change, Options options)
    : io_(io), on_change_(std::move(on_change)), options_(std::move(options)), random_(std::random_device{}()) {}

HealthChecker::~HealthChecker() {
  for (auto& service : services_) service->stop_probes();
}

HealthChecker::Service* HealthChecker::find(const std::string& name) {
  const auto it = std::find_if(services_.begin(), services_.end(), [&](const auto& s) { return s->name == name; });
  return it == services_.end() ? nullptr : it->get();
}

const HealthChecker::Service* HealthChecker::find(const std::string& name) const {
  return const_cast<HealthChecker*>(this)->find(name);
}

void HealthChecker::set_targets(const std::string& name, const std::optional<config::HealthCheck>& check,
                                const std::vector<config::IpAddress>& addresses) {
  Service* service = find(name);
  if (!service) {
    services_.push_back(std::make_unique<Service>());
    service = services_.back().get();
    service->name = name;
  }
  const bool check_changed = check.has_value() != service->check.has_value() ||
                             (check && !same_check(*check, *service->check));
  service->check = check;

  // The new replica list, in the given order: kept replicas move over with their state.
  std::vector<Replica> replicas;
  replicas.reserve(addresses.size());
  std::vector<config::IpAddress> came_up; // down replicas of a check that is gone
  for (const auto& address : addresses) {
    if (std::any_of(replicas.begin(), replicas.end(), [&](const Replica& r) { return r.address == address; }))
      continue;
    if (Replica* kept = service->find(address)) {
      replicas.push_back(std::move(*kept));
      kept->prober.reset(); // moved from; make sure the leftover does not stop the moved prober
    } else {
      Replica fresh;
      fresh.address = address;
      replicas.push_back(std::move(fresh));
    }
  }
  for (auto& removed : service->replicas)
    if (removed.prober) removed.stop_probe();
  service->replicas = std::move(replicas);

  for (auto& replica : service->replicas) {
    if (check_changed || !check) {
      replica.stop_probe();
      replica.consecutive_successes = 0;
      replica.consecutive_failures = 0;
      if (!check && !replica.healthy) {
        replica.healthy = true;
        ++service->counters.transitions;
        came_up.push_back(replica.address);
      }
    }
    if (check && !replica.prober) start_probe(*service, replica);
  }
  for (const auto& address : came_up) {
    spdlog::info("health: service {} replica {} is up (health check removed)", name, address.to_string());
    notify(name, address, true);
  }
  update_all_down(*service);
}

void HealthChecker::remove_service(const std::string& name) {
  const auto it = std::find_if(services_.begin(), services_.end(), [&](const auto& s) { return s->name == name; });
  if (it == services_.end()) return;
  (*it)->stop_probes();
  if ((*it)->all_down) spdlog::info("health: service {} removed while all its replicas were down", name);
  services_.erase(it);
}

void HealthChecker::configure(const config::Ingress& ingress) {
  std::vector<std::string> gone;
  for (const auto& service : services_)
    if (std::none_of(ingress.services.begin(), ingress.services.end(), [&](const auto& s) { return s.name == service->name; }))
      gone.push_back(service->name);
  for (const auto& name : gone) remove_service(name);
  for (const auto& service : ingress.services) {
    std::vector<config::IpAddress> addresses;
    addresses.reserve(service.replicas.size());
    for (const auto& replica : service.replicas) addresses.push_back(replica.address);
    set_targets(service.name, service.health_check, addresses);
  }
}

void HealthChecker::start_probe(Service& service, Replica& replica) {
  const auto& check = *service.check;
  const auto interval = std::chrono::milliseconds(std::max<std::uint32_t>(check.interval_ms, 1));
  std::uniform_int_distribution<std::int64_t> jitter(0, std::chrono::duration_cast<std::chrono::microseconds>(interval).count() - 1);
  ProbeSettings settings{.check = check, .dns_query_name = options_.dns_query_name, .dns_query_type = options_.dns_query_type};
  // The prober reports by name: the replica may move within the vector or leave; the checker
  // outlives every report (its destructor stops the probers first).
  replica.prober = std::make_shared<Prober>(io_, std::move(settings), replica.address,
                                            [this, name = service.name, address = replica.address](const ProbeResult& result) {
                                              on_result(name, address, result);
                                            });
  replica.prober->start(std::chrono::microseconds(jitter(random_)));
}

void HealthChecker::on_result(const std::string& name, const config::IpAddress& address, const ProbeResult& result) {
  Service* service = find(name);
  Replica* replica = service ? service->find(address) : nullptr;
  if (!replica || !service->check) return;
  const auto& check = *service->check;

  ++replica->probes;
  ++service->counters.probes;
  replica->last_latency_ms = std::chrono::duration<double, std::milli>(result.latency).count();
  if (result.ok) {
    replica->consecutive_failures = 0;
    ++replica->consecutive_successes;
    if (!replica->healthy && replica->consecutive_successes >= check.rise) {
      replica->healthy = true;
      ++service->counters.transitions;
      spdlog::info("health: service {} replica {} is up ({} successful probes)", name, address.to_string(),
                   replica->consecutive_successes);
      notify(name, address, true);
    }
  } else {
    ++replica->failures;
    ++service->counters.failures;
    replica->last_error = result.error;
    replica->consecutive_successes = 0;
    ++replica->consecutive_failures;
    spdlog::debug("health: service {} replica {} probe failed: {}", name, address.to_string(), result.error);
    if (replica->healthy && replica->consecutive_failures >= check.fall) {
      replica->healthy = false;
      ++service->counters.transitions;
      spdlog::warn("health: service {} replica {} is down ({} failed probes, last: {})", name, address.to_string(),
                   replica->consecutive_failures, result.error);
      notify(name, address, false);
    }
  }
  // The callback must not call back in, but look the service up again rather than trust it.
  if (Service* again = find(name)) update_all_down(*again);
}

void HealthChecker::update_all_down(Service& service) {
  const bool down = !service.replicas.empty() &&
                    std::none_of(service.replicas.begin(), service.replicas.end(), [](const Replica& r) { return r.healthy; });
  if (down == service.all_down) return;
  service.all_down = down;
  if (down) {
    ++service.counters.all_down_events;
    spdlog::error("health: service {}: ALL {} REPLICAS ARE DOWN, its traffic has nowhere to go", service.name,
                  service.replicas.size());
  } else {
    spdlog::info("health: service {}: replicas are available again", service.name);
  }
}

void HealthChecker::notify(const std::string& service, const config::IpAddress& replica, bool healthy) {
  if (!on_change_) return;
  try {
    on_change_(service, replica, healthy);
  } catch (const std::exception& error) {
    spdlog::error("health: service {} replica {}: state change callback failed: {}", service, replica.to_string(),
                  error.what());
  }
}

std::optional<bool> HealthChecker::healthy(const std::string& service, const config::IpAddress& replica) const {
  const auto status = replica_status(service, replica);
  if (!status) return std::nullopt;
  return status->healthy;
}

std::optional<ReplicaStatus> HealthChecker::replica_status(const std::string& name, const config::IpAddress& address) const {
  const Service* service = find(name);
  if (!service) return std::nullopt;
  for (const auto& r : service->replicas) {
    if (r.address != address) continue;
    return ReplicaStatus{.address = r.address,
                         .healthy = r.healthy,
                         .checked = service->check.has_value(),
                         .consecutive_successes = r.consecutive_successes,
                         .consecutive_failures = r.consecutive_failures,
                         .probes = r.probes,
                         .failures = r.failures,
                         .last_error = r.last_error,
                         .last_latency_ms = r.last_latency_ms};
  }
  return std::nullopt;
}

std::optional<ServiceCounters> HealthChecker::counters(const std::string& name) const {
  const Service* service = find(name);
  if (!service) return std::nullopt;
  return service->counters;
}

std::optional<bool> HealthChecker::all_down(const std::string& name) const {
  const Service* service = find(name);
  if (!service) return std::nullopt;
  return service->all_down;
}

std::vector<ReplicaHealth> HealthChecker::health() const {
  std::vector<ReplicaHealth> all;
  for (const auto& service : services_)
    for (const auto& r : service->replicas) all.push_back({service->name, r.address, r.healthy});
  return all;
}

nlohmann::json HealthChecker::status() const {
  nlohmann::json services = nlohmann::json::array();
  for (const auto& service : services_) {
    nlohmann::json replicas = nlohmann::json::array();
    for (const auto& r : service->replicas) {
      replicas.push_back({{"address", r.address.to_string()},
                          {"healthy", r.healthy},
                          {"consecutive_successes", r.consecutive_successes},
                          {"consecutive_failures", r.consecutive_failures},
                          {"probes", r.probes},
                          {"failures", r.failures},
                          {"last_error", r.last_error},
                          {"last_latency_ms", r.last_latency_ms ? nlohmann::json(*r.last_latency_ms) : nlohmann::json()}});
    }
    services.push_back({{"name", service->name},
                        {"check", service->check ? check_json(*service->check) : nlohmann::json()},
                        {"all_down", service->all_down},
                        {"probes", service->counters.probes},
                        {"failures", service->counters.failures},
                        {"transitions", service->counters.transitions},
                        {"all_down_events", service->counters.all_down_events},
                        {"replicas", replicas}});
  }
  return {{"services", services}};
}

} // namespace xdpfwd::ingress::health
