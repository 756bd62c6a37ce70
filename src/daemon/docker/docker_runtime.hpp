// The docker runtime: each ingress is a container `xdpfwd-ingress-<name>` of the xdpfwd-ingress
// image on the ingress's own attachable Swarm overlay `xdpfwd-<name>` (VNI pinned by
// com.docker.network.driver.overlay.vxlanid_list, subnet from overlay.address), reached through a
// veth `xf-<name>` (host) <-> `svc0` (container) that the daemon plumbs into the container's
// network namespace (/proc/<State.Pid>/ns/net). Inside the container:
//   svc0  the service IPs (/32, /128), default routes via 169.254.1.1 / fe80::1 pinned to the
//         host veth's MAC (as in the static runtime), the ingress_pass XDP program;
//   eth0  Docker's overlay endpoint, holding overlay.address (a static IPAM address; the
//         network's gateway is moved to the subnet's last usable address to leave it free).
// The overlay is --internal: no docker_gwbridge leg, no default route of Docker's.
// The inspector is the container's entrypoint; its control socket is in the daemon's run
// directory, bind-mounted at the same path. Everything created carries the labels
// xdpfwd.managed=true and xdpfwd.ingress=<name>; services get xdpfwd.attached.<name>.
#pragma once

#include "docker_client.hpp"
#include "ingress_runtime.hpp"
#include "replica_watcher.hpp"

#include <filesystem>
#include <map>
#include <mutex>

namespace xdpfwd::docker {

class DockerRuntime final : public IngressRuntime {
public:
  struct Settings {
    std::string socket = "/var/run/docker.sock";
    std::string image = "xdpfwd-ingress:latest";
    std::filesystem::path run_dir = "/run/xdpfwd"; // the control socket's directory
    std::string log_level = "info";
    // Appended to the inspector's command line, e.g. {"--client-interface", "svc0",
    // "--overlay-interface", "eth0"} once the inspector takes interface names.
    std::vector<std::string> inspector_args;
  };

  static std::string network_name(const std::string& ingress) { return "xdpfwd-" + ingress; }
  static std::string container_name(const std::string& ingress) { return "xdpfwd-ingress-" + ingress; }
  static std::string host_veth_name(const std::string& ingress) { return "xf-" + ingress; }
  static std::string attached_label(const std::string& ingress) { return "xdpfwd.attached." + ingress; }
  static constexpr const char* kServiceInterface = "svc0";
  static constexpr const char* kLabelManaged = "xdpfwd.managed";
  static constexpr const char* kLabelIngress = "xdpfwd.ingress";
  static constexpr const char* kLabelConfig = "xdpfwd.config"; // hash of what the container was made from
  // Capabilities of the inspector: XDP and AF_XDP need NET_ADMIN and NET_RAW; bpf() passes
  // Docker's default seccomp profile only with SYS_ADMIN (Docker 20.10 does not know CAP_BPF);
  // IPC_LOCK lets the AF_XDP UMEM be pinned beyond RLIMIT_MEMLOCK.
  static const std::vector<std::string>& capabilities();

  explicit DockerRuntime(Settings settings);
  ~DockerRuntime() override; // removes every ingress still running (release_all() first to keep them)

  // Network, service attachments, container and veth. A container of a previous run that was
  // made from the same settings and still runs with its veth is adopted untouched (the XDP path
  // never goes away); anything else of that name is replaced.
  IngressEndpoint start(const config::Ingress& ingress) override;
  // Removes the veth, the container, the services' attachments and the network (when this
  // daemon created it).
  void stop(const std::string& ingress_name) override;
  // Takes over the container, veth and network a previous run left (same image and settings,
  // running, veth in place); nullopt otherwise, and start() then replaces them.
  std::optional<IngressEndpoint> adopt(const config::Ingress& ingress) override;
  // Forgets every ingress without removing anything from Docker (a restart of the daemon).
  void release_all() override;

  // After the ingress container died (ReplicaWatcher's IngressEvent "die", or the engine came
  // back after a restart): starts it again when it is not running, plumbs a new veth into its
  // new network namespace and returns the new endpoint for the XDP maps (unchanged when the veth
  // is still in place). The inspector then needs its configuration again.
  IngressEndpoint repair(const std::string& ingress_name);

  // What the ReplicaWatcher should follow for the ingresses started so far.
  std::vector<WatchedService> watched_services() const;
  DockerClient& client() { return client_; }

private:
  struct Running {
    config::Ingress ingress;
    std::string network_id;
    bool created_network = false;
    std::string container_id;
    std::vector<std::string> attached_services; // Docker services this daemon attached
  };

  struct Recipe {
    json command;       // the inspector's arguments
    json endpoint_ipam; // the container's static overlay addresses
    std::string hash;   // of everything the container is made from
  };
  Recipe recipe(const config::Ingress& ingress, const std::string& network_id);
  std::string ensure_network(const config::Ingress& ingress, bool& created);
  std::string ensure_container(const config::Ingress& ingress, const std::string& network_id, bool& adopted);
  IngressEndpoint plumb(const config::Ingress& ingress, int pid, bool adopt);
  void stop_locked(const std::string& ingress_name);
  int running_pid(const std::string& container_id, const std::string& ingress);

  Settings settings_;
  DockerClient client_;
  Netlink host_;
  std::map<std::string, Running> running_;
  mutable std::mutex mutex_;
};

} // namespace xdpfwd::docker
