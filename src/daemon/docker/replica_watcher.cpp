#include "replica_watcher.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace xdpfwd::docker {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kTick = 200ms;         // longest wait for an event before looking at the clock
constexpr auto kFollowUp = 300ms;     // a change seen in an event is read again after this
constexpr auto kMinBackoff = 250ms;
constexpr auto kMaxBackoff = 5s;

bool same_replicas(const std::vector<TaskAddress>& a, const std::vector<TaskAddress>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const TaskAddress& x, const TaskAddress& y) {
    return x.task_id == y.task_id && x.address == y.address;
  });
}

std::string attribute(const json& event, const std::string& key) {
  const json& attributes = event.value("Actor", json::object()).value("Attributes", json::object());
  const auto found = attributes.find(key);
  return found != attributes.end() && found->is_string() ? found->get<std::string>() : std::string();
}

} // namespace

ReplicaWatcher::ReplicaWatcher(Settings settings, ReplicasChanged on_replicas, IngressEvent on_ingress,
                               Connection on_connection)
    : settings_(std::move(settings)), on_replicas_(std::move(on_replicas)), on_ingress_(std::move(on_ingress)),
      on_connection_(std::move(on_connection)), thread_([this] { run(); }) {}

ReplicaWatcher::~ReplicaWatcher() {
  stopping_ = true;
  thread_.join();
}

void ReplicaWatcher::set_services(std::vector<WatchedService> services) {
  std::lock_guard lock(mutex_);
  services_ = std::move(services);
  services_changed_ = true;
  std::erase_if(current_, [&](const auto& entry) {
    return std::none_of(services_.begin(), services_.end(), [&](const WatchedService& s) { return s.service == entry.first; });
  });
}

std::map<std::string, std::vector<TaskAddress>> ReplicaWatcher::snapshot() const {
  std::lock_guard lock(mutex_);
  return current_;
}

void ReplicaWatcher::run() {
  DockerClient client(settings_.socket, 10s);
  auto backoff = std::chrono::milliseconds(kMinBackoff);
  bool was_connected = true; // so that the first failure is reported
  while (!stopping_) {
    try {
      session(client);
      backoff = kMinBackoff;
    } catch (const std::exception& error) {
      if (stopping_) break;
      if (was_connected) {
        spdlog::warn("docker: lost the engine at {} ({}); reconnecting, replicas stay as they were", settings_.socket,
                     error.what());
        if (on_connection_) on_connection_(false, error.what());
      }
      was_connected = false;
      const auto until = Clock::now() + backoff;
      while (!stopping_ && Clock::now() < until) std::this_thread::sleep_for(50ms);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
      continue;
    }
  }
}

// One connection: subscribe first, then read everything, so that no change falls in between.
void ReplicaWatcher::session(DockerClient& client) {
  client.reset(); // the engine may have been upgraded while away
  const json filters = {{"type", {"service", "container", "network", "node"}}};
  EventStream stream = client.events(filters);
  spdlog::info("docker: following events of {} (API {})", client.socket_path(), client.api_version());
  if (on_connection_) on_connection_(true, {});
  refresh(client);
  auto next_resync = Clock::now() + settings_.resync;
  constexpr auto kNone = Clock::time_point::max();
  Clock::time_point follow_up = kNone; // a second look after a change
  while (!stopping_) {
    const auto now = Clock::now();
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_resync - now);
    if (follow_up != kNone) wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(follow_up - now));
    wait = std::clamp<std::chrono::milliseconds>(wait, 0ms, kTick);
    bool changed = false;
    while (auto event = stream.next(wait)) { // drain what is there, then read the tasks once
      if (concerns_us(*event)) changed = true;
      wait = 0ms;
    }
    {
      std::lock_guard lock(mutex_);
      changed = changed || services_changed_;
    }
    const auto after = Clock::now();
    bool due = after >= next_resync;
    if (after >= follow_up) {
      follow_up = kNone; // the manager may mark a task a little after its container's event
      due = true;
    }
    if (changed) follow_up = after + kFollowUp;
    if (changed || due) {
      refresh(client);
      next_resync = Clock::now() + settings_.resync;
    }
  }
}

// Whether an event may change a watched list; notes dead containers and ingress events.
bool ReplicaWatcher::concerns_us(const json& event) {
  const std::string type = event.value("Type", std::string());
  const std::string action = event.value("Action", event.value("status", std::string()));
  if (type == "container") {
    if (const std::string ingress = attribute(event, "xdpfwd.ingress"); !ingress.empty() && on_ingress_)
      on_ingress_(ingress, action);
    const std::string service = attribute(event, "com.docker.swarm.service.name");
    if (service.empty()) return false;
    std::lock_guard lock(mutex_);
    if (action == "die" || action == "kill" || action == "oom")
      dead_containers_.insert(event.value("Actor", json::object()).value("ID", std::string()));
    return std::any_of(services_.begin(), services_.end(),
                       [&](const WatchedService& s) { return s.docker_service == service; });
  }
  if (type == "network") {
    const std::string id = event.value("Actor", json::object()).value("ID", std::string());
    std::lock_guard lock(mutex_);
    return std::any_of(services_.begin(), services_.end(), [&](const WatchedService& s) { return s.network_id == id; });
  }
  return type == "service" || type == "node";
}

void ReplicaWatcher::refresh(DockerClient& client) {
  std::vector<WatchedService> services;
  std::set<std::string> dead;
  {
    std::lock_guard lock(mutex_);
    services = services_;
    services_changed_ = false;
    dead = dead_containers_;
  }
  std::set<std::string> still_listed;
  std::vector<std::pair<WatchedService, std::vector<TaskAddress>>> changes;
  for (const auto& service : services) {
    std::vector<TaskAddress> replicas;
    try {
      replicas = client.running_task_addresses(service.docker_service, service.network_id);
    } catch (const DockerError& error) {
      if (!error.not_found()) throw; // the engine is in trouble: reconnect
      spdlog::warn("ingress {}: service {}: Docker service {} does not exist (yet): no replicas", service.ingress,
                   service.service, service.docker_service);
    }
    std::erase_if(replicas, [&](const TaskAddress& task) {
      if (!dead.contains(task.container_id)) return false;
      still_listed.insert(task.container_id);
      return true;
    });
    std::lock_guard lock(mutex_);
    const auto found = current_.find(service.service);
    if (found == current_.end() || !same_replicas(found->second, replicas)) {
      current_[service.service] = replicas;
      changes.emplace_back(service, std::move(replicas));
    }
  }
  {
    std::lock_guard lock(mutex_);
    // Forget dead containers once the manager no longer lists their tasks as running.
    std::erase_if(dead_containers_, [&](const std::string& id) { return dead.contains(id) && !still_listed.contains(id); });
  }
  for (const auto& [service, replicas] : changes) {
    std::string list;
    for (const auto& r : replicas) list += (list.empty() ? "" : ", ") + r.address;
    spdlog::info("ingress {}: service {} (Docker service {}): {} replicas [{}]", service.ingress, service.service,
                 service.docker_service, replicas.size(), list);
    if (on_replicas_) on_replicas_(service, replicas);
  }
}

} // namespace xdpfwd::docker
