// Follows the Docker services behind each ingress and reports their replicas: the running tasks'
// addresses on the ingress's overlay. A thread of its own keeps one GET /events connection
// (service, container, network and node events) and re-reads the tasks when an event concerns
// them, plus every `resync` interval, because tasks on other nodes of the swarm produce no local
// container events. A task whose container died here is dropped at once, before the manager
// marks it. When the engine goes away the watcher reconnects with back-off and re-reads
// everything; the last lists stay valid meanwhile.
//
// Callbacks run on the watcher's thread: post them to your io_context.
#pragma once

#include "docker_client.hpp"

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace xdpfwd::docker {

struct WatchedService {
  std::string ingress;        // ingress name
  std::string service;        // service name in services.json
  std::string docker_service; // Docker service name
  std::string network_id;     // the ingress's overlay
};

class ReplicaWatcher {
public:
  struct Settings {
    std::string socket = "/var/run/docker.sock";
    std::chrono::milliseconds resync{1000};
  };
  // service: WatchedService::service; replicas sorted by address.
  using ReplicasChanged = std::function<void(const WatchedService& service, const std::vector<TaskAddress>& replicas)>;
  // An ingress container (label xdpfwd.ingress) was started, died, ...: Docker's action name.
  using IngressEvent = std::function<void(const std::string& ingress, const std::string& action)>;
  // The engine connection came or went (reason when it went).
  using Connection = std::function<void(bool connected, const std::string& reason)>;

  ReplicaWatcher(Settings settings, ReplicasChanged on_replicas, IngressEvent on_ingress = {}, Connection on_connection = {});
  ~ReplicaWatcher(); // stops the thread
  ReplicaWatcher(const ReplicaWatcher&) = delete;
  ReplicaWatcher& operator=(const ReplicaWatcher&) = delete;

  // Replaces the watched set (thread-safe); reads the new set at once. A service whose list
  // changed, or that is new, gets a callback.
  void set_services(std::vector<WatchedService> services);
  std::map<std::string, std::vector<TaskAddress>> snapshot() const; // by WatchedService::service

private:
  void run();
  void session(DockerClient& client);
  void refresh(DockerClient& client);
  bool concerns_us(const json& event);

  Settings settings_;
  ReplicasChanged on_replicas_;
  IngressEvent on_ingress_;
  Connection on_connection_;

  mutable std::mutex mutex_;
  std::vector<WatchedService> services_;
  bool services_changed_ = true;
  std::map<std::string, std::vector<TaskAddress>> current_;
  std::set<std::string> dead_containers_; // died here; their tasks may still read "running"

  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

} // namespace xdpfwd::docker
