#include "docker_runtime.hpp"

#include "service_veth.hpp"
#include "xdpfwd/netns.hpp"
#include "xdpfwd/system_error.hpp"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <thread>

namespace xdpfwd::docker {
namespace {

using boost::asio::ip::address;
using boost::asio::ip::make_address;
using namespace std::chrono_literals;

// As in the static runtime: a fixed link-local next hop pinned to the host veth's MAC.
constexpr const char* kKernelPortRange = "60000 65535";
constexpr auto kStartTimeout = 20s;


// The network's own gateway address (IPAM reserves it): the subnet's last usable address, or
// the one before when that is the ingress's.
std::string gateway_for(const config::Ipv4Interface& own) {
  const auto subnet = own.canonical();
  if (subnet.prefix_length() > 29) throw std::runtime_error("overlay.address " + own.to_string() + ": the subnet is too small for Docker's IPAM");
  auto gateway = boost::asio::ip::make_address_v4(subnet.broadcast().to_uint() - 1);
  if (gateway == own.address()) gateway = boost::asio::ip::make_address_v4(gateway.to_uint() - 1);
  return gateway.to_string();
}

std::string gateway_for(const config::Ipv6Interface& own) {
  const auto subnet = own.canonical();
  auto bytes = subnet.network().to_bytes();
  for (int bit = subnet.prefix_length(); bit < 128; ++bit) bytes[bit / 8] |= static_cast<unsigned char>(0x80 >> (bit % 8));
  bytes[15] &= 0xfe; // ...fffe
  auto gateway = boost::asio::ip::make_address_v6(bytes);
  if (gateway == own.address()) {
    bytes[15] = 0xfd;
    gateway = boost::asio::ip::make_address_v6(bytes);
  }
  return gateway.to_string();
}

// Tasks take the lowest free address of the range: the range is the half of the subnet that does
// not hold the ingress's address, so that no task ever takes it (while the ingress container
// restarts, for instance).
std::string task_range_for(const config::Ipv4Interface& own) {
  const auto subnet = own.canonical();
  const auto half = boost::asio::ip::network_v4(subnet.network(), subnet.prefix_length() + 1);
  const bool own_in_lower = half.hosts().find(own.address()) != half.hosts().end() || own.address() == half.network();
  const auto upper = boost::asio::ip::make_address_v4(half.broadcast().to_uint() + 1);
  return boost::asio::ip::network_v4(own_in_lower ? upper : subnet.network(), half.prefix_length()).to_string();
}

std::string task_range_for(const config::Ipv6Interface& own) {
  const auto subnet = own.canonical();
  auto bytes = subnet.network().to_bytes();
  const int bit = subnet.prefix_length(); // the first host bit picks the half
  const auto own_bytes = own.address().to_bytes();
  const bool own_in_upper = own_bytes[bit / 8] & (0x80 >> (bit % 8));
  if (!own_in_upper) bytes[bit / 8] |= static_cast<unsigned char>(0x80 >> (bit % 8));
  return boost::asio::ip::network_v6(boost::asio::ip::make_address_v6(bytes), bit + 1).to_string();
}

std::string subnet_of(const config::Ipv4Interface& own) { return own.canonical().to_string(); }
std::string subnet_of(const config::Ipv6Interface& own) { return own.canonical().to_string(); }

// IPAM config entries of a network, by subnet.
bool has_subnet(const json& network, const std::string& subnet) {
  for (const auto& entry : network.value("IPAM", json::object()).value("Config", json::array()))
    if (entry.value("Subnet", std::string()) == subnet) return true;
  return false;
}

// The container's network namespace, through the file Docker keeps for it (SandboxKey):
// /proc/<pid>/ns/net of its process takes CAP_SYS_PTRACE once the inspector runs as nobody.
UniqueFd open_netns_of(const json& container) {
  const std::string path = container.value("NetworkSettings", json::object()).value("SandboxKey", std::string());
  if (path.empty())
    throw_errno(ENOENT, "container " + container.value("Name", std::string()) + ": Docker names no network namespace");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("open the container's network namespace " + path);
  return fd;
}

} // namespace

const std::vector<std::string>& DockerRuntime::capabilities() {
  static const std::vector<std::string> caps = {"NET_ADMIN", "NET_RAW", "SYS_ADMIN", "IPC_LOCK"};
  return caps;
}

DockerRuntime::DockerRuntime(Settings settings)
    : settings_(std::move(settings)), client_(settings_.socket), host_(Netlink::open()) {}

DockerRuntime::~DockerRuntime() {
  while (!running_.empty()) {
    const std::string name = running_.begin()->first;
    try {
      stop(name);
    } catch (const std::exception& error) {
      spdlog::error("ingress {}: removing it from Docker failed: {}", name, error.what());
      running_.erase(name);
    }
  }
}

std::string DockerRuntime::ensure_network(const config::Ingress& ingress, bool& created) {
  const std::string name = network_name(ingress.name);
  if (!ingress.overlay.address)
    throw std::runtime_error("ingress " + ingress.name + ": runtime docker needs overlay.address (the overlay's subnet)");
  OverlaySpec spec{.name = name,
                   .vni = ingress.overlay.vni,
                   .subnet = subnet_of(*ingress.overlay.address),
                   .gateway = gateway_for(*ingress.overlay.address),
                   .ip_range = task_range_for(*ingress.overlay.address),
                   .subnet6 = {},
                   .gateway6 = {},
                   .ip_range6 = {},
                   .internal = true,
                   .labels = {{kLabelManaged, "true"}, {kLabelIngress, ingress.name}}};
  if (const auto& v6 = ingress.overlay.address6) {
    spec.subnet6 = subnet_of(*v6);
    spec.gateway6 = gateway_for(*v6);
    spec.ip_range6 = task_range_for(*v6);
  }
  created = false;
  if (const auto existing = client_.inspect_network(name); existing && existing->value("Name", std::string()) == name) {
    // Adopted as it is when it is what this ingress needs; never changed or removed otherwise.
    const std::string vni = existing->value("Options", json::object())
                                .value("com.docker.network.driver.overlay.vxlanid_list", std::string());
    std::string problem;
    if (existing->value("Driver", std::string()) != "overlay") problem = "its driver is not overlay";
    else if (!existing->value("Attachable", false)) problem = "it is not attachable";
    else if (vni != std::to_string(ingress.overlay.vni)) problem = "its VNI is " + (vni.empty() ? "not pinned" : vni);
    else if (!has_subnet(*existing, spec.subnet)) problem = "it has no subnet " + spec.subnet;
    else if (!spec.subnet6.empty() && !has_subnet(*existing, spec.subnet6)) problem = "it has no subnet " + spec.subnet6;
    if (!problem.empty())
      throw std::runtime_error("ingress " + ingress.name + ": Docker network " + name + " exists but " + problem +
                               " (VNI " + std::to_string(ingress.overlay.vni) + ", subnet " + spec.subnet +
                               " wanted); remove it or change the config");
    const bool ours = existing->value("Labels", json::object()).value(kLabelManaged, std::string()) == "true";
    created = ours; // made by a previous run: still this daemon's to remove
    spdlog::info("ingress {}: adopting the existing overlay network {} ({})", ingress.name, name,
                 ours ? "made by a previous run" : "made by someone else, left in place on stop");
    return existing->at("Id").get<std::string>();
  }
  const std::string id = client_.create_overlay(spec);
  created = true;
  spdlog::info("ingress {}: overlay network {} created (VNI {}, subnet {}, tasks from {}, gateway {})", ingress.name,
               name, ingress.overlay.vni, spec.subnet, spec.ip_range, spec.gateway);
  return id;
}

int DockerRuntime::running_pid(const std::string& container_id, const std::string& ingress) {
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  for (;;) {
    const auto info = client_.inspect_container(container_id);
    if (!info) throw std::runtime_error("ingress " + ingress + ": its container vanished while starting");
    const json& state = info->value("State", json::object());
    const int pid = state.value("Pid", 0);
    if (state.value("Running", false) && pid > 0) return pid;
    if (std::chrono::steady_clock::now() > deadline || (!state.value("Running", false) && !state.value("Restarting", false) &&
                                                        state.value("Status", std::string()) == "exited"))
      throw std::runtime_error("ingress " + ingress + ": its container is not running (" +
                               state.value("Status", std::string("?")) + ", exit code " +
                               std::to_string(state.value("ExitCode", 0)) + ": " + state.value("Error", std::string()) +
                               "); see docker logs " + container_name(ingress));
    std::this_thread::sleep_for(100ms);
  }
}

DockerRuntime::Recipe DockerRuntime::recipe(const config::Ingress& ingress, const std::string& network_id) {
  const auto image = client_.inspect_image(settings_.image);
  if (!image)
    throw std::runtime_error("ingress " + ingress.name + ": the image " + settings_.image + " is not in Docker at " +
                             settings_.socket + "; build it with docker/build-image (see README)");
  Recipe result;
  const std::string control = (settings_.run_dir / ("ingress-" + ingress.name + ".sock")).string();
  result.command = {"--ingress", ingress.name, "--control", control, "--log-level", settings_.log_level};
  for (const auto& arg : settings_.inspector_args) result.command.push_back(arg);
  result.endpoint_ipam = {{"IPv4Address", ingress.overlay.address->address().to_string()}};
  if (ingress.overlay.address6) result.endpoint_ipam["IPv6Address"] = ingress.overlay.address6->address().to_string();
  // What the container is made from: a container of a previous run with the same hash is kept.
  const std::string text = image->at("Id").get<std::string>() + "|" + network_id + "|" + result.command.dump() + "|" +
                           result.endpoint_ipam.dump() + "|" + settings_.run_dir.string();
  result.hash = std::to_string(std::hash<std::string>{}(text));
  return result;
}

std::string DockerRuntime::ensure_container(const config::Ingress& ingress, const std::string& network_id, bool& adopted) {
  const std::string name = container_name(ingress.name);
  const Recipe made = recipe(ingress, network_id);
  const json& command = made.command;
  const json& endpoint_ipam = made.endpoint_ipam;
  const std::string& hash = made.hash;

  adopted = false;
  if (const auto existing = client_.inspect_container(name)) {
    const json& labels = existing->value("Config", json::object()).value("Labels", json::object());
    const bool running = existing->value("State", json::object()).value("Running", false);
    if (running && labels.value(kLabelConfig, std::string()) == hash) {
      adopted = true;
      spdlog::info("ingress {}: adopting the running container {} of a previous run", ingress.name, name);
      return existing->at("Id").get<std::string>();
    }
    spdlog::warn("ingress {}: replacing the container {} that was left behind ({})", ingress.name, name,
                 running ? "made from other settings" : "not running");
    client_.remove_container(existing->at("Id").get<std::string>(), true);
  }

  const std::string network = network_name(ingress.name);
  const json config = {
      {"Image", settings_.image},
      {"Cmd", command},
      {"Labels", {{kLabelManaged, "true"}, {kLabelIngress, ingress.name}, {kLabelConfig, hash}}},
      {"HostConfig",
       {{"NetworkMode", network},
        {"Binds", {settings_.run_dir.string() + ":" + settings_.run_dir.string()}},
        {"CapAdd", capabilities()},
        // The runtime restarts it (repair()), so that it re-plumbs the veth each time.
        {"RestartPolicy", {{"Name", "no"}}},
        {"Init", false}}},
      {"NetworkingConfig", {{"EndpointsConfig", {{network, {{"IPAMConfig", endpoint_ipam}}}}}}},
  };
  std::filesystem::create_directories(settings_.run_dir);
  const std::string id = client_.create_container(name, config);
  client_.start_container(id);
  spdlog::info("ingress {}: container {} started from {}", ingress.name, name, settings_.image);
  return id;
}

// The veth into the container's netns, set up as the static runtime sets up its eth0.
IngressEndpoint DockerRuntime::plumb(const config::Ingress& ingress, int pid, bool adopt) {
  const std::string veth = host_veth_name(ingress.name);
  const std::string where = "ingress " + ingress.name;
  const auto container = client_.inspect_container(container_name(ingress.name));
  if (!container) throw std::runtime_error(where + ": its container is gone");
  const UniqueFd netns = open_netns_of(*container);
  Netlink inside = Netlink::open_in(netns.get());

  if (adopt) {
    const auto host_end = host_.find_link(veth);
    const auto ingress_end = inside.find_link(kServiceInterface);
    if (host_end && ingress_end) {
      spdlog::info("{}: keeping veth {} <-> {} of the previous run", where, veth, kServiceInterface);
      return IngressEndpoint{host_end->ifindex, host_end->mac, ingress_end->mac};
    }
  }
  if (host_.delete_link(veth)) spdlog::info("{}: replaced the veth {} left from the container's previous life", where, veth);

  host_.create_veth(veth, kServiceInterface, netns.get());
  try {
    const auto [host_end, ingress_end] = plumb_service_veth(host_, inside, netns.get(), veth, kServiceInterface, ingress);

    // Docker's overlay endpoint: the interface that holds overlay.address.
    const auto overlay = inside.find_link_with_address(ingress.overlay.address->address());
    if (!overlay)
      throw std::runtime_error(where + ": no interface in the container holds " +
                               ingress.overlay.address->address().to_string() + " (Docker's overlay endpoint)");
    run_in_netns(netns.get(), [&] {
      write_sysctl("net/ipv6/conf/" + overlay->name + "/accept_dad", "0");
      write_sysctl("net/ipv4/ip_local_port_range", kKernelPortRange);
    });
    spdlog::info("{}: container pid {}: veth {} ({}) <-> {} ({}), overlay {} mtu {}", where, pid, veth,
                 to_string(host_end.mac), kServiceInterface, to_string(ingress_end.mac), overlay->name, overlay->mtu);
    return IngressEndpoint{host_end.ifindex, host_end.mac, ingress_end.mac};
  } catch (...) {
    host_.delete_link(veth);
    throw;
  }
}

IngressEndpoint DockerRuntime::start(const config::Ingress& ingress) {
  std::lock_guard lock(mutex_);
  client_.reset();
  spdlog::info("docker: engine at {} speaks API {}", settings_.socket, client_.api_version());
  Running state;
  state.ingress = ingress;
  state.network_id = ensure_network(ingress, state.created_network);
  try {
    bool adopted = false;
    state.container_id = ensure_container(ingress, state.network_id, adopted);
    const int pid = running_pid(state.container_id, ingress.name);
    IngressEndpoint endpoint = plumb(ingress, pid, adopted);
    for (const auto& service : ingress.services) {
      if (!service.docker_service) continue;
      const std::string& docker_service = *service.docker_service;
      try {
        if (client_.attach_service_network(docker_service, state.network_id,
                                           {{attached_label(ingress.name), network_name(ingress.name)}})) {
          spdlog::info("ingress {}: attached Docker service {} to {} (its tasks are replaced)", ingress.name,
                       docker_service, network_name(ingress.name));
        }
        const auto info = client_.inspect_service(docker_service);
        if (info && info->at("Spec").value("Labels", json::object()).contains(attached_label(ingress.name)))
          state.attached_services.push_back(docker_service);
      } catch (const DockerError& error) {
        if (!error.not_found()) throw;
        spdlog::warn("ingress {}: Docker service {} does not exist (yet); its replicas follow once it does (attach "
                     "it to {} yourself, or restart xdpfwd)",
                     ingress.name, docker_service, network_name(ingress.name));
      }
    }
    running_.insert_or_assign(ingress.name, std::move(state));
    return endpoint;
  } catch (...) {
    running_.insert_or_assign(ingress.name, std::move(state));
    try {
      stop_locked(ingress.name);
    } catch (const std::exception& error) {
      spdlog::error("ingress {}: cleaning up after a failed start: {}", ingress.name, error.what());
    }
    throw;
  }
}

IngressEndpoint DockerRuntime::repair(const std::string& ingress_name) {
  std::lock_guard lock(mutex_);
  const auto found = running_.find(ingress_name);
  if (found == running_.end()) throw std::runtime_error("ingress " + ingress_name + " is not running");
  const auto info = client_.inspect_container(found->second.container_id);
  if (!info) throw std::runtime_error("ingress " + ingress_name + ": its container " + container_name(ingress_name) + " is gone");
  const json& state = info->value("State", json::object());
  if (!state.value("Running", false)) {
    spdlog::error("ingress {}: container {} {} (exit code {}{}{}): starting it again", ingress_name,
                  container_name(ingress_name), state.value("Status", std::string("?")), state.value("ExitCode", 0),
                  state.value("OOMKilled", false) ? ", out of memory" : "",
                  state.value("Error", std::string()).empty() ? "" : ", " + state.value("Error", std::string()));
    client_.start_container(found->second.container_id);
  }
  const int pid = running_pid(found->second.container_id, ingress_name);
  return plumb(found->second.ingress, pid, true);
}

void DockerRuntime::stop(const std::string& ingress_name) {
  std::lock_guard lock(mutex_);
  stop_locked(ingress_name);
}

void DockerRuntime::stop_locked(const std::string& ingress_name) {
  const auto found = running_.find(ingress_name);
  if (found == running_.end()) return;
  const Running state = found->second;
  running_.erase(found);
  host_.delete_link(host_veth_name(ingress_name));
  if (!state.container_id.empty()) client_.remove_container(state.container_id, true);
  for (const auto& service : state.attached_services) {
    try {
      client_.detach_service_network(service, state.network_id, {attached_label(ingress_name)});
    } catch (const DockerError& error) {
      if (!error.not_found()) throw;
    }
  }
  if (state.created_network) {
    // Endpoints leave the network a moment after their containers: retry for a while.
    for (int attempt = 0;; ++attempt) {
      try {
        client_.remove_network(state.network_id);
        break;
      } catch (const DockerError& error) {
        if (attempt >= 50) {
          spdlog::warn("ingress {}: could not remove the network {}: {}", ingress_name, network_name(ingress_name),
                       error.what());
          break;
        }
        std::this_thread::sleep_for(200ms);
      }
    }
  }
  spdlog::info("ingress {}: removed from Docker", ingress_name);
}

std::optional<IngressEndpoint> DockerRuntime::adopt(const config::Ingress& ingress) {
  std::lock_guard lock(mutex_);
  try {
    client_.reset();
    const auto network = client_.inspect_network(network_name(ingress.name));
    if (!network || !ingress.overlay.address) return std::nullopt;
    Running state;
    state.ingress = ingress;
    state.network_id = network->at("Id").get<std::string>();
    state.created_network = network->value("Labels", json::object()).value(kLabelManaged, std::string()) == "true";
    const auto container = client_.inspect_container(container_name(ingress.name));
    if (!container || !container->value("State", json::object()).value("Running", false)) return std::nullopt;
    const json& labels = container->value("Config", json::object()).value("Labels", json::object());
    if (labels.value(kLabelConfig, std::string()) != recipe(ingress, state.network_id).hash) return std::nullopt;
    state.container_id = container->at("Id").get<std::string>();
    const int pid = container->at("State").value("Pid", 0);
    const UniqueFd netns = open_netns_of(*container);
    Netlink inside = Netlink::open_in(netns.get());
    const auto host_end = host_.find_link(host_veth_name(ingress.name));
    const auto ingress_end = inside.find_link(kServiceInterface);
    if (!host_end || !ingress_end) return std::nullopt;
    for (const auto& service : ingress.services) {
      if (!service.docker_service) continue;
      const auto info = client_.inspect_service(*service.docker_service);
      if (info && info->at("Spec").value("Labels", json::object()).contains(attached_label(ingress.name)))
        state.attached_services.push_back(*service.docker_service);
    }
    running_.insert_or_assign(ingress.name, std::move(state));
    spdlog::info("ingress {}: took over container {} (pid {}) and veth {} of the previous run", ingress.name,
                 container_name(ingress.name), pid, host_veth_name(ingress.name));
    return IngressEndpoint{host_end->ifindex, host_end->mac, ingress_end->mac};
  } catch (const std::exception& error) {
    spdlog::warn("ingress {}: cannot take over what the previous run left ({}): starting it anew", ingress.name,
                 error.what());
    return std::nullopt;
  }
}

void DockerRuntime::release_all() {
  std::lock_guard lock(mutex_);
  spdlog::info("docker: leaving {} ingress containers running for the next run", running_.size());
  running_.clear();
}

std::vector<WatchedService> DockerRuntime::watched_services() const {
  std::lock_guard lock(mutex_);
  std::vector<WatchedService> result;
  for (const auto& [name, state] : running_)
    for (const auto& service : state.ingress.services)
      if (service.docker_service) result.push_back({name, service.name, *service.docker_service, state.network_id});
  return result;
}

} // namespace xdpfwd::docker
