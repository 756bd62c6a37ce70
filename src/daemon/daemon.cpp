#include "daemon.hpp"

#include "docker_runtime.hpp"
#include "metrics.hpp"
#include "redirect_drops.hpp"
#include "replica_watcher.hpp"
#include "systemd_restart.hpp"
#include "static_runtime.hpp"
#include "xdpfwd/control_server.hpp"
#include "xdpfwd/ingress_control.hpp"
#include "xdpfwd/xdp_maps.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace xdpfwd {
namespace {

// Settings that shape what exists from the start: changing them needs a restart.
std::vector<std::string> needs_restart(const config::Config& running, const config::Config& next) {
  std::vector<std::string> fields;
  if (running.runtime != next.runtime) fields.push_back("runtime");
  if (running.docker.socket != next.docker.socket) fields.push_back("docker.socket");
  if (running.docker.ingress_image != next.docker.ingress_image) fields.push_back("docker.ingress_image");
  if (running.pin_dir != next.pin_dir) fields.push_back("pin_dir");
  if (running.control_socket != next.control_socket) fields.push_back("control_socket");
  if (running.underlay_local != next.underlay_local) fields.push_back("underlay.local");
  if (running.metrics_listen != next.metrics_listen) fields.push_back("metrics.listen");
  return fields;
}

// The ingress's object in a services.json document; null if it has none.
nlohmann::json ingress_document(const nlohmann::json& document, const std::string& name) {
  if (!document.contains("ingresses")) return nullptr;
  for (const auto& ingress : document.at("ingresses"))
    if (ingress.value("name", "") == name) return ingress;
  return nullptr;
}

// What the runtime built an ingress from: its namespace, veth and overlay.
bool same_plumbing(const nlohmann::json& a, const nlohmann::json& b) {
  return a.value("service_ips", nlohmann::json()) == b.value("service_ips", nlohmann::json()) &&
         a.value("overlay", nlohmann::json()) == b.value("overlay", nlohmann::json());
}

std::optional<std::string> read_text(const std::filesystem::path& file, std::string& error) {
  std::ifstream in(file);
  if (!in) {
    error = file.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

} // namespace

Daemon::Daemon(std::filesystem::path file, config::Config config, nlohmann::json document)
    : file_(std::move(file)), config_(std::move(config)), document_(std::move(document)) {}

// The XDP path first, so no frame is sent into a veth being removed; then the inspectors, then
// their namespaces.
Daemon::~Daemon() {
  watcher_.reset(); // no more replica or container events
  watch_.reset();
  host_xdp_.reset();
  inspectors_.reset();
  runtime_.reset();
}

std::uint32_t Daemon::take_stats_slot() {
  if (!free_stats_slots_.empty()) {
    const std::uint32_t slot = free_stats_slots_.back();
    free_stats_slots_.pop_back();
    return slot;
  }
  if (next_stats_slot_ >= XDPFWD_MAX_SERVICE_IPS)
    throw std::runtime_error("more than " + std::to_string(XDPFWD_MAX_SERVICE_IPS) + " service IPs");
  return next_stats_slot_++;
}

std::filesystem::path Daemon::state_path() const {
  return std::filesystem::path(config_.control_socket).parent_path() / "state.json";
}

void Daemon::save_state() const {
  nlohmann::json slots = nlohmann::json::object();
  for (const auto& [name, running] : running_) slots[name] = running.stats_slots;
  const auto path = state_path();
  std::ofstream(path.string() + ".new")
      << nlohmann::json{{"document", document_}, {"stats_slots", slots}, {"drained", drained_}}.dump() << "\n";
  std::filesystem::rename(path.string() + ".new", path);
}

void Daemon::bring_up() {
  std::filesystem::create_directories(state_path().parent_path());
  if (adopt_previous_run()) {
    reload("the config file, after adopting the previous run");
  } else {
    host_xdp_ = std::make_unique<HostXdp>(config_.pin_dir, false);
    make_runtime();
    inspectors_ = std::make_unique<IngressSupervisor>(
        io_, IngressSupervisor::Settings{IngressSupervisor::default_binary(), config_.control_socket, config_.log_level});
    set_inspector_config(document_);
    // Maps first, attach last: the program starts with every service in place.
    for (const auto& ingress : config_.ingresses) add_ingress(ingress);
    for (const auto& interface : config_.interfaces) host_xdp_->attach(interface);
    host_xdp_->commit(); // attached everywhere: a pin upgrade can no longer be undone
  }
  redirect_drops_ = std::make_unique<RedirectDrops>(host_xdp_->ingress_devs_fd());
  save_state();
  watch_replicas();
}

bool Daemon::adopt_previous_run() {
  std::ifstream file(state_path());
  if (!file || !std::filesystem::exists(std::filesystem::path(config_.pin_dir) / std::string(kServicesMap))) return false;
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(file);
  } catch (const nlohmann::json::exception& error) {
    spdlog::warn("{}: unreadable ({}); starting afresh", state_path().string(), error.what());
    return false;
  }
  auto previous = config::parse(state.value("document", nlohmann::json::object()).dump());
  // Only what the previous run could have built from is adopted: same runtime and places.
  if (!previous.config || !needs_restart(*previous.config, config_).empty()) return false;

  spdlog::info("adopting what the previous run left (generation of {})", state_path().string());
  config_ = *previous.config;
  document_ = state.at("document");
  for (const auto& drained : state.value("drained", nlohmann::json::array()))
    drained_.insert(drained.get<std::array<std::string, 3>>());
  host_xdp_ = std::make_unique<HostXdp>(config_.pin_dir, true);
  make_runtime();
  inspectors_ = std::make_unique<IngressSupervisor>(
      io_, IngressSupervisor::Settings{IngressSupervisor::default_binary(), config_.control_socket, config_.log_level});
  set_inspector_config(document_);
  const nlohmann::json slots = state.value("stats_slots", nlohmann::json::object());
  std::vector<bool> used(XDPFWD_MAX_SERVICE_IPS, false);
  std::vector<const config::Ingress*> missing;
  for (const auto& ingress : config_.ingresses) {
    const auto endpoint = runtime_->adopt(ingress);
    const auto ingress_slots = slots.value(ingress.name, std::vector<std::uint32_t>());
    if (!endpoint || ingress_slots.size() != ingress.service_ips.size()) {
      missing.push_back(&ingress);
      continue;
    }
    start_inspector(ingress.name, true);
    host_xdp_->add_ingress_dev(endpoint->host_ifindex); // the same entries again: no change
    for (size_t i = 0; i < ingress.service_ips.size(); ++i) {
      xdpfwd_service_value target{};
      target.ifindex = static_cast<__u32>(endpoint->host_ifindex);
      target.stats_index = ingress_slots[i];
      std::memcpy(target.dst_mac, endpoint->ingress_mac.data(), sizeof(target.dst_mac));
      std::memcpy(target.src_mac, endpoint->host_mac.data(), sizeof(target.src_mac));
      host_xdp_->set_service(ingress.service_ips[i], target);
      used.at(ingress_slots[i]) = true;
    }
    running_.insert_or_assign(ingress.name, RunningIngress{ingress, *endpoint, ingress_slots});
  }
  next_stats_slot_ = 0;
  for (std::uint32_t slot = 0; slot < used.size(); ++slot)
    if (used[slot]) next_stats_slot_ = slot + 1;
  for (std::uint32_t slot = 0; slot < next_stats_slot_; ++slot)
    if (!used[slot]) free_stats_slots_.push_back(slot);
  // What could not be adopted is built afresh, as at any start.
  for (const auto* ingress : missing) {
    spdlog::warn("ingress {}: nothing usable left by the previous run; creating it", ingress->name);
    add_ingress(*ingress);
  }
  for (const auto& interface : config_.interfaces) host_xdp_->attach(interface);
  host_xdp_->commit(); // attached everywhere: a pin upgrade can no longer be undone
  return true;
}

void Daemon::shut_down() {
  const bool restart = keep_on_stop_ || systemd_restarting_this_unit();
  if (restart) {
    save_state();
    spdlog::info("stopping for a restart: the XDP program, the ingresses and their inspectors stay for the next run");
    watcher_.reset();
    watch_.reset();
    host_xdp_->release();
    inspectors_->release_all();
    runtime_->release_all();
    return;
  }
  std::error_code ignored;
  std::filesystem::remove(state_path(), ignored);
}

void Daemon::add_ingress(const config::Ingress& ingress) {
  const IngressEndpoint endpoint = runtime_->start(ingress);
  RunningIngress running{ingress, endpoint, {}};
  try {
    start_inspector(ingress.name);
    host_xdp_->add_ingress_dev(endpoint.host_ifindex);
    for (const auto& ip : ingress.service_ips) {
      xdpfwd_service_value target{};
      target.ifindex = static_cast<__u32>(endpoint.host_ifindex);
      target.stats_index = take_stats_slot();
      running.stats_slots.push_back(target.stats_index);
      std::memcpy(target.dst_mac, endpoint.ingress_mac.data(), sizeof(target.dst_mac));
      std::memcpy(target.src_mac, endpoint.host_mac.data(), sizeof(target.src_mac));
      host_xdp_->reset_stats(target.stats_index); // a slot a removed service IP counted in
      host_xdp_->set_service(ip, target);
      spdlog::info("ingress {}: service IP {} -> {}", ingress.name, ip.to_string(),
                   StaticRuntime::host_veth_name(ingress.name));
    }
  } catch (...) {
    // Nothing half-made stays: what was added goes again, in reverse.
    for (size_t i = 0; i < running.stats_slots.size(); ++i) {
      host_xdp_->remove_service(ingress.service_ips[i]);
      free_stats_slots_.push_back(running.stats_slots[i]);
    }
    host_xdp_->remove_ingress_dev(endpoint.host_ifindex);
    inspectors_->stop(ingress.name);
    runtime_->stop(ingress.name);
    throw;
  }
  running_.insert_or_assign(ingress.name, std::move(running));
}

void Daemon::remove_ingress(const std::string& name) {
  const RunningIngress& running = running_.at(name);
  // The XDP path lets go first: from here its service IPs reach the host's stack.
  for (size_t i = 0; i < running.stats_slots.size(); ++i) {
    host_xdp_->remove_service(running.config.service_ips[i]);
    free_stats_slots_.push_back(running.stats_slots[i]);
  }
  host_xdp_->remove_ingress_dev(running.endpoint.host_ifindex);
  inspectors_->stop(name);
  runtime_->stop(name);
  running_.erase(name);
  std::erase_if(docker_replicas_, [&](const auto& entry) { return entry.first.first == name; });
}

Daemon::ReloadResult Daemon::reload(const std::string& why) {
  ReloadResult result;
  std::string read_error;
  const auto text = read_text(file_, read_error);
  config::ParseResult parsed;
  if (!text) parsed.errors.push_back({"", read_error});
  else parsed = config::parse(*text);
  for (const auto& error : parsed.errors) result.errors.push_back(file_.string() + ": " + to_string(error));
  if (parsed.config)
    for (const auto& field : needs_restart(config_, *parsed.config))
      result.errors.push_back(field + " changed: that takes effect when xdpfwd restarts");
  if (!result.errors.empty()) {
    for (const auto& error : result.errors) spdlog::error("reload ({}): {}", why, error);
    spdlog::error("reload ({}) rejected: {} errors; the running configuration (generation {}) stays", why,
                  result.errors.size(), generation_);
    ++reloads_rejected_;
    return result;
  }
  const config::Config next = std::move(*parsed.config);
  const nlohmann::json document = nlohmann::json::parse(*text);
  if (document == document_) {
    spdlog::info("reload ({}): no change", why);
    return result;
  }
  sd_notify(0, "RELOADING=1\nSTATUS=reloading");
  spdlog::info("reload ({}): applying generation {}", why, generation_ + 1);
  try {
    spdlog::set_level(spdlog::level::from_str(next.log_level));
    set_inspector_config(document);
    for (const auto& interface : config_.interfaces) {
      const bool kept = std::any_of(next.interfaces.begin(), next.interfaces.end(),
                                    [&](const auto& i) { return i.name == interface.name; });
      if (!kept && host_xdp_->detach(interface.name)) result.changes.push_back("interface " + interface.name + " detached");
    }
    // Removals first: they free the service IPs and VNIs that additions may take over.
    std::vector<const config::Ingress*> to_add;
    std::vector<std::string> to_configure;
    for (auto it = running_.begin(); it != running_.end();) {
      const std::string name = (it++)->first;
      const nlohmann::json before = ingress_document(document_, name);
      const nlohmann::json after = ingress_document(document, name);
      if (after.is_null() || !same_plumbing(before, after)) {
        remove_ingress(name);
        result.changes.push_back("ingress " + name + " removed");
      } else if (before != after) {
        to_configure.push_back(name);
      }
    }
    for (const auto& ingress : next.ingresses)
      if (!running_.contains(ingress.name)) to_add.push_back(&ingress);
    for (const auto& name : to_configure) {
      configure_inspector(name);
      running_.at(name).config =
          *std::find_if(next.ingresses.begin(), next.ingresses.end(), [&](const auto& i) { return i.name == name; });
      result.changes.push_back("ingress " + name + " reconfigured");
    }
    for (const auto* ingress : to_add) {
      add_ingress(*ingress);
      result.changes.push_back("ingress " + ingress->name + " added");
    }
    for (const auto& interface : next.interfaces) {
      if (host_xdp_->attached(interface.name)) continue;
      host_xdp_->attach(interface);
      result.changes.push_back("interface " + interface.name + " attached");
    }
    config_ = next;
    document_ = document;
    save_state();
    watch_replicas();
  } catch (const std::exception& error) {
    // What was applied stays applied (running_ says what runs); the rest is reported.
    result.errors.push_back(std::string("applying the new configuration failed: ") + error.what());
    spdlog::error("reload ({}): {}", why, result.errors.back());
  }
  ++generation_;
  ++(result.errors.empty() ? reloads_applied_ : reloads_rejected_);
  for (const auto& change : result.changes) spdlog::info("reload ({}): {}", why, change);
  spdlog::info("reload ({}): generation {} in place", why, generation_);
  sd_notify(0, "READY=1\nSTATUS=forwarding");
  return result;
}

void Daemon::log_counters() const {
  for (const auto& [name, running] : running_) {
    for (size_t i = 0; i < running.stats_slots.size(); ++i) {
      const auto counters = read_service_counters(host_xdp_->service_stats_fd(), running.stats_slots[i]);
      spdlog::info("ingress {}: service IP {}: {} packets, {} bytes, {} redirect errors, {} malformed", name,
                   running.config.service_ips[i].to_string(), counters.packets, counters.bytes,
                   counters.redirect_errors, counters.malformed);
    }
  }
  const auto malformed = read_malformed_counters(host_xdp_->malformed_fd());
  for (int reason = 0; reason < XDPFWD_MALFORMED_REASONS; ++reason)
    if (malformed[reason] != 0) spdlog::info("malformed frames ({}): {}", malformed_reason_name(reason), malformed[reason]);
}

nlohmann::json Daemon::handle_control(const nlohmann::json& request) {
  const std::string op = request.value("op", "");
  if (op == "status") return {{"ok", true}, {"status", status()}};
  if (op == "drain" || op == "undrain") return set_drained(request, op == "drain");
  if (op == "prepare-restart") {
    keep_on_stop_ = true;
    spdlog::info("the next stop keeps the XDP path, the ingresses and their inspectors for the next run");
    return {{"ok", true}};
  }
  if (op == "reload") {
    const ReloadResult result = reload("xdpfwdctl reload");
    return {{"ok", result.errors.empty()},
            {"errors", result.errors},
            {"changes", result.changes},
            {"generation", generation_}};
  }
  return {{"ok", false}, {"error", "unknown op \"" + op + "\""}};
}

nlohmann::json Daemon::inspector_document(nlohmann::json document) const {
  if (!document.contains("ingresses")) return document;
  for (auto& ingress : document["ingresses"])
    for (auto& service : ingress["services"])
      if (service.contains("replicas"))
        for (auto& replica : service["replicas"]) {
          const std::array<std::string, 3> key{ingress.value("name", ""), service.value("name", ""), replica.value("address", "")};
          if (drained_.contains(key)) replica["weight"] = 0;
        }
  return document;
}

nlohmann::json Daemon::set_drained(const nlohmann::json& request, bool drained) {
  const std::string ingress = request.value("ingress", ""), service = request.value("service", ""),
                    replica = request.value("replica", "");
  const auto running = running_.find(ingress);
  if (running == running_.end()) return {{"ok", false}, {"error", "no ingress \"" + ingress + "\""}};
  const auto& services = running->second.config.services;
  const auto found = std::find_if(services.begin(), services.end(), [&](const auto& s) { return s.name == service; });
  if (found == services.end())
    return {{"ok", false}, {"error", "ingress " + ingress + " has no service \"" + service + "\""}};
  boost::system::error_code bad;
  const auto address = boost::asio::ip::make_address(replica, bad);
  const auto docker_list = docker_replicas_.find({ingress, service});
  const bool known = docker_ ? docker_list != docker_replicas_.end() &&
                                   std::ranges::find(docker_list->second, bad ? replica : address.to_string()) !=
                                       docker_list->second.end()
                             : std::any_of(found->replicas.begin(), found->replicas.end(),
                                           [&](const auto& r) { return r.address == address; });
  if (bad || !known)
    return {{"ok", false}, {"error", "service " + service + " has no replica \"" + replica + "\""}};
  const std::array<std::string, 3> key{ingress, service, address.to_string()};
  if (drained) drained_.insert(key);
  else drained_.erase(key);
  set_inspector_config(document_);
  configure_inspector(ingress);
  save_state();
  spdlog::info("ingress {}: service {}: replica {} {}", ingress, service, key[2],
               drained ? "drained: no new flows, established ones go on" : "undrained: takes new flows again");
  return {{"ok", true}};
}

nlohmann::json Daemon::status() const {
  nlohmann::json ingresses = nlohmann::json::array();
  for (const auto& [name, running] : running_) {
    nlohmann::json service_ips = nlohmann::json::array();
    for (size_t i = 0; i < running.stats_slots.size(); ++i) {
      const auto counters = read_service_counters(host_xdp_->service_stats_fd(), running.stats_slots[i]);
      service_ips.push_back({{"address", running.config.service_ips[i].to_string()},
                             {"packets", counters.packets},
                             {"bytes", counters.bytes},
                             {"redirect_errors", counters.redirect_errors},
                             {"malformed", counters.malformed}});
    }
    ingresses.push_back({{"name", name},
                         {"netns", docker_ ? docker::DockerRuntime::container_name(name) : StaticRuntime::netns_name(name)},
                         {"vni", running.config.overlay.vni},
                         {"service_ips", service_ips},
                         {"redirect_not_delivered", redirect_drops_ ? redirect_drops_->dropped(running.endpoint.host_ifindex) : 0},
                         {"inspector", inspectors_->status(name)}});
  }
  nlohmann::json malformed = nlohmann::json::object();
  const auto counters = read_malformed_counters(host_xdp_->malformed_fd());
  for (int reason = 0; reason < XDPFWD_MALFORMED_REASONS; ++reason)
    malformed[std::string(malformed_reason_name(reason))] = counters[reason];
  return {{"generation", generation_}, {"config", file_.string()}, {"ingresses", ingresses}, {"malformed", malformed}};
}

void Daemon::make_runtime() {
  if (config_.runtime != config::Runtime::Docker) {
    runtime_ = std::make_unique<StaticRuntime>(config_.underlay_local);
    return;
  }
  docker::DockerRuntime::Settings settings;
  settings.socket = config_.docker.socket;
  settings.image = config_.docker.ingress_image;
  settings.run_dir = std::filesystem::path(config_.control_socket).parent_path();
  settings.log_level = config_.log_level;
  // In the container the clients come in on the veth svc0, the replicas are behind Docker's
  // overlay endpoint eth0.
  settings.inspector_args = {"--client-interface", docker::DockerRuntime::kServiceInterface, "--overlay-interface", "eth0"};
  // Static inspectors inherit the daemon's environment; a container's command line carries it.
  if (const std::string transport = ingress_transport_from_environment(); !transport.empty())
    settings.inspector_args.insert(settings.inspector_args.end(), {"--transport", transport});
  auto runtime = std::make_unique<docker::DockerRuntime>(std::move(settings));
  docker_ = runtime.get();
  runtime_ = std::move(runtime);
}

void Daemon::set_inspector_config(const nlohmann::json& doc) {
  pushed_document_ = inspector_document(doc);
  inspectors_->set_config(pushed_document_);
}

void Daemon::start_inspector(const std::string& name, bool adopt) {
  if (!docker_) {
    inspectors_->start(name, StaticRuntime::netns_name(name), adopt);
    return;
  }
  // The container runs its inspector itself: it only needs its configuration, replicas included.
  read_replicas(name);
  configure_inspector(name);
}

void Daemon::configure_inspector(const std::string& name) {
  if (!docker_) {
    inspectors_->configure(name);
    return;
  }
  const nlohmann::json document = docker_inspector_document(name);
  if (document.is_null()) return; // said why already; the inspector keeps what it has
  using namespace std::chrono_literals;
  xdpfwd::configure_inspector(ingress_control_path(config_.control_socket, name), name, document, 30s);
  size_t replicas = 0;
  for (const auto& service : document.at("ingresses").at(0).at("services")) replicas += service.at("replicas").size();
  spdlog::info("ingress {}: inspector configured in container {} ({} replicas)", name,
               docker::DockerRuntime::container_name(name), replicas);
}

// The inspector parses what it gets with config::parse, which (rightly, for a file) refuses
// `replicas` under runtime "docker" and needs them under "static". So a docker inspector gets
// the document as a static one: runtime "static", no "docker" object, only its own ingress, and
// each service's docker_service replaced by the replicas the watcher reported (drained ones at
// weight 0). A service without a running task (none yet, scaled to 0, its node lost) goes with
// no replica (allow_empty_replicas): the inspector then drops its traffic as no_replica instead
// of keeping the replicas it had, which may be gone or have handed their address on.
nlohmann::json Daemon::docker_inspector_document(const std::string& name) const {
  nlohmann::json ingress = ingress_document(pushed_document_, name);
  if (ingress.is_null()) return nullptr;
  std::vector<std::string> empty;
  for (auto& service : ingress["services"]) {
    const std::string service_name = service.value("name", "");
    const auto list = docker_replicas_.find({name, service_name});
    service.erase("docker_service");
    nlohmann::json replicas = nlohmann::json::array();
    if (list != docker_replicas_.end())
      for (const auto& address : list->second) {
        nlohmann::json replica = {{"address", address}};
        if (drained_.contains({name, service_name, address})) replica["weight"] = 0;
        replicas.push_back(std::move(replica));
      }
    if (replicas.empty()) empty.push_back(service_name);
    service["replicas"] = std::move(replicas);
  }
  if (!empty.empty()) {
    std::string names;
    for (const auto& service : empty) names += (names.empty() ? "" : ", ") + service;
    spdlog::warn("ingress {}: no running replica for service(s) {}: their traffic is dropped until one runs", name, names);
  }
  nlohmann::json document = pushed_document_;
  document["runtime"] = "static";
  document["allow_empty_replicas"] = true;
  document.erase("docker");
  document["ingresses"] = nlohmann::json::array({std::move(ingress)});
  const auto parsed = config::parse(document.dump());
  if (!parsed.config) {
    std::string errors;
    for (const auto& error : parsed.errors) errors += (errors.empty() ? "" : "; ") + to_string(error);
    spdlog::warn("ingress {}: the inspector is not (re)configured yet: {}", name, errors);
    return nullptr;
  }
  return document;
}

void Daemon::read_replicas(const std::string& name) {
  for (const auto& watched : docker_->watched_services()) {
    if (watched.ingress != name) continue;
    try {
      std::vector<std::string> list;
      for (const auto& task : docker_->client().running_task_addresses(watched.docker_service, watched.network_id))
        if (!task.address.empty()) list.push_back(task.address);
      std::ranges::sort(list);
      docker_replicas_[{name, watched.service}] = std::move(list);
    } catch (const std::exception& error) {
      spdlog::warn("ingress {}: service {}: cannot read the tasks of {}: {}", name, watched.service,
                   watched.docker_service, error.what());
    }
  }
}

void Daemon::watch_replicas() {
  if (!docker_) return;
  if (!watcher_) {
    // Both callbacks run on the watcher's thread: the work is posted to the main loop.
    watcher_ = std::make_unique<docker::ReplicaWatcher>(
        docker::ReplicaWatcher::Settings{.socket = config_.docker.socket},
        [this](const docker::WatchedService& watched, const std::vector<docker::TaskAddress>& tasks) {
          std::vector<std::string> list;
          for (const auto& task : tasks)
            if (!task.address.empty()) list.push_back(task.address);
          boost::asio::post(io_, [this, ingress = watched.ingress, service = watched.service, list = std::move(list)] {
            if (!running_.contains(ingress)) return;
            auto& known = docker_replicas_[{ingress, service}];
            if (known == list) return;
            known = list;
            std::string addresses;
            for (const auto& address : list) addresses += (addresses.empty() ? "" : ", ") + address;
            spdlog::info("ingress {}: service {}: {} replicas: {}", ingress, service, list.size(), addresses);
            try {
              configure_inspector(ingress);
            } catch (const std::exception& error) {
              spdlog::error("ingress {}: {}", ingress, error.what());
            }
          });
        },
        [this](const std::string& ingress, const std::string& action) {
          if (action != "die") return;
          boost::asio::post(io_, [this, ingress] {
            if (!running_.contains(ingress)) return;
            spdlog::warn("ingress {}: its container died; restarting and re-plumbing it", ingress);
            try {
              repair_ingress(ingress);
            } catch (const std::exception& error) {
              spdlog::error("ingress {}: repair failed: {}", ingress, error.what());
            }
          });
        },
        [this](bool connected, const std::string& reason) {
          if (connected) spdlog::info("docker: following the services' tasks");
          else spdlog::warn("docker: lost the engine ({}); the replica lists stay as they are", reason);
          boost::asio::post(io_, [this, connected] {
            if (!connected) {
              docker_engine_lost_ = true;
              return;
            }
            if (!std::exchange(docker_engine_lost_, false)) return;
            // Back from an engine restart: without live-restore (which Swarm mode refuses) the
            // engine stopped the ingress containers, and their events went with the connection.
            for (const auto& [name, running] : running_) {
              spdlog::info("ingress {}: the engine is back; checking its container", name);
              try {
                repair_ingress(name);
              } catch (const std::exception& error) {
                spdlog::error("ingress {}: repair failed: {}", name, error.what());
              }
            }
          });
        });
  }
  watcher_->set_services(docker_->watched_services());
}

void Daemon::repair_ingress(const std::string& name) {
  const IngressEndpoint endpoint = docker_->repair(name);
  set_endpoint(running_.at(name), endpoint);
  configure_inspector(name);
}

void Daemon::set_endpoint(RunningIngress& running, const IngressEndpoint& endpoint) {
  const IngressEndpoint old = running.endpoint;
  if (old.host_ifindex == endpoint.host_ifindex && old.host_mac == endpoint.host_mac &&
      old.ingress_mac == endpoint.ingress_mac)
    return;
  host_xdp_->add_ingress_dev(endpoint.host_ifindex);
  for (size_t i = 0; i < running.stats_slots.size(); ++i) {
    xdpfwd_service_value target{};
    target.ifindex = static_cast<__u32>(endpoint.host_ifindex);
    target.stats_index = running.stats_slots[i];
    std::memcpy(target.dst_mac, endpoint.ingress_mac.data(), sizeof(target.dst_mac));
    std::memcpy(target.src_mac, endpoint.host_mac.data(), sizeof(target.src_mac));
    host_xdp_->set_service(running.config.service_ips[i], target);
  }
  if (old.host_ifindex != endpoint.host_ifindex) host_xdp_->remove_ingress_dev(old.host_ifindex);
  running.endpoint = endpoint;
  spdlog::info("ingress {}: service IPs -> {} (ifindex {})", running.config.name,
               docker::DockerRuntime::host_veth_name(running.config.name), endpoint.host_ifindex);
}

void Daemon::start_watchdog() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0) return;
  // Twice per period, from the loop that does the work: a stuck loop misses it.
  watchdog_period_ = std::chrono::microseconds(usec / 2);
  watchdog_ = std::make_unique<boost::asio::steady_timer>(io_);
  spdlog::info("feeding the systemd watchdog every {} ms", watchdog_period_.count() / 1000);
  feed_watchdog();
}

void Daemon::feed_watchdog() {
  sd_notify(0, "WATCHDOG=1");
  watchdog_->expires_after(watchdog_period_);
  watchdog_->async_wait([this](const boost::system::error_code& error) {
    if (!error) feed_watchdog();
  });
}

int Daemon::run() {
  boost::asio::signal_set signals(io_, SIGTERM, SIGINT, SIGHUP);
  int exit_code = 0;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& error, int signal) {
        if (error) return;
        if (signal == SIGHUP) {
          reload("SIGHUP");
          signals.async_wait(on_signal);
          return;
        }
        spdlog::info("{}: shutting down", strsignal(signal));
        io_.stop();
      };
  signals.async_wait(on_signal);

  std::optional<ControlServer> control;
  try {
    bring_up();
    control.emplace(io_, config_.control_socket, [this](const nlohmann::json& request) { return handle_control(request); });
    watch_ = std::make_unique<ConfigWatch>(io_, file_, [this] { reload("the config file changed"); });
    metrics_ = std::make_unique<MetricsServer>(io_, config_.metrics_listen, [this] {
      return prometheus_text(status(), reloads_applied_, reloads_rejected_);
    });
  } catch (const std::exception& error) {
    spdlog::critical("start-up failed: {}", error.what());
    return 1;
  }
  size_t service_ips = 0;
  for (const auto& [name, running] : running_) service_ips += running.stats_slots.size();
  sd_notify(0, "READY=1\nSTATUS=forwarding");
  start_watchdog();
  spdlog::info("ready: {} ingresses, {} service IPs", running_.size(), service_ips);
  io_.run();

  sd_notify(0, "STOPPING=1");
  try {
    log_counters();
    shut_down();
  } catch (const std::exception& error) {
    spdlog::error("stopping: {}", error.what());
    exit_code = 1;
  }
  return exit_code;
}

} // namespace xdpfwd
