// A Docker Engine API client over the engine's unix socket (HTTP/1.1 through Boost.Beast, JSON
// through nlohmann). One short connection per request, so a restarted engine is simply reached
// again; the event stream keeps its own connection (EventStream).
//
// The API version is negotiated on first use: the engine's ApiVersion from GET /version, capped
// at kMaxApiVersion (what this client was written against), refused below kMinApiVersion. Every
// failure throws DockerError, whose what() says what was asked and what Docker answered:
//   "docker: POST /v1.41/networks/create: 409 Conflict: network with name xdpfwd-waf already exists"
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace xdpfwd::docker {

using nlohmann::json;

// "1.41" as {1, 41}; ordered.
struct ApiVersion {
  int major = 1;
  int minor = 0;
  static std::optional<ApiVersion> parse(std::string_view text);
  std::string to_string() const { return std::to_string(major) + "." + std::to_string(minor); }
  friend auto operator<=>(const ApiVersion&, const ApiVersion&) = default;
};

// Docker 20.10 speaks 1.41, 23.0 1.42, 24.0 1.43, 25.0 1.44, 26.0 1.45. Everything this client
// sends is understood from 1.40 on (Docker 19.03).
inline constexpr ApiVersion kMinApiVersion{1, 40};
inline constexpr ApiVersion kMaxApiVersion{1, 45};

class DockerError : public std::runtime_error {
public:
  // status 0: no HTTP answer at all (cannot connect, connection lost, timeout).
  DockerError(int status, std::string request, std::string message);
  int status() const { return status_; }
  const std::string& request() const { return request_; }    // "POST /v1.41/networks/create"
  const std::string& message() const { return message_; }    // Docker's "message", or the I/O error
  bool not_found() const { return status_ == 404; }
  bool conflict() const { return status_ == 409; }

private:
  int status_;
  std::string request_;
  std::string message_;
};

struct Response {
  int status = 0;
  std::string body;
  json parsed() const; // body as JSON; null for an empty body
};

// An attachable Swarm overlay network.
struct OverlaySpec {
  std::string name;
  std::uint32_t vni = 0;        // com.docker.network.driver.overlay.vxlanid_list
  std::string subnet;           // "10.201.0.0/24"
  std::string gateway;          // kept by Docker's IPAM for the network itself
  std::string ip_range;         // where tasks' addresses come from (a static address stays outside)
  std::string subnet6;          // optional IPv6 subnet
  std::string gateway6;
  std::string ip_range6;
  bool internal = true;         // no docker_gwbridge leg, no default route into containers
  std::map<std::string, std::string> labels;
};

// One running task's address on a given network.
struct TaskAddress {
  std::string task_id;
  std::string container_id; // empty until the task has a container
  std::string node_id;
  std::string address;      // "10.201.0.5" (prefix stripped)
  int slot = 0;
};

class EventStream;

class DockerClient {
public:
  explicit DockerClient(std::string socket_path, std::chrono::milliseconds timeout = std::chrono::seconds(30));

  const std::string& socket_path() const { return socket_path_; }
  // The negotiated version ("1.41"); negotiates on first call.
  std::string api_version();
  // Forgets the negotiated version, so the next request asks again (after an engine restart).
  void reset() { api_version_.reset(); }
  json version(); // GET /version, unversioned

  // A request to /v<api>/<path> (path starts with '/'); a status >= 400 throws DockerError.
  Response request(std::string_view method, const std::string& path, const std::optional<json>& body = std::nullopt,
                   std::string_view content_type = "application/json");
  // The same with a raw body (tar archives for /build and /images/create).
  Response request_raw(std::string_view method, const std::string& path, std::string body,
                       std::string_view content_type);

  // Networks
  std::optional<json> inspect_network(const std::string& name_or_id); // nullopt: 404
  std::string create_overlay(const OverlaySpec& spec);                  // the network's Id
  void remove_network(const std::string& name_or_id);                   // 404 is not an error
  std::vector<json> list_networks(const json& filters);

  // Containers
  std::string create_container(const std::string& name, const json& config); // the Id
  void start_container(const std::string& id);
  std::optional<json> inspect_container(const std::string& name_or_id);
  void kill_container(const std::string& id, const std::string& signal = "SIGKILL");
  void stop_container(const std::string& id, int timeout_seconds);
  void remove_container(const std::string& id, bool force = true); // 404 is not an error
  std::vector<json> list_containers(const json& filters, bool all = true);

  // Services and tasks
  std::optional<json> inspect_service(const std::string& name_or_id);
  void update_service(const std::string& id, std::uint64_t version, const json& spec);
  // Adds network_id to the service's TaskTemplate.Networks unless it is there already (also
  // moving a legacy Spec.Networks list there); retries when the service changed meanwhile.
  // True when the service was updated. labels are added to the service's labels with the change.
  bool attach_service_network(const std::string& service, const std::string& network_id,
                              const std::map<std::string, std::string>& labels = {});
  // The reverse: removes network_id and the given label keys; false if it was not attached.
  bool detach_service_network(const std::string& service, const std::string& network_id,
                              const std::vector<std::string>& label_keys = {});
  std::vector<json> list_tasks(const json& filters);
  // The tasks of `service` that run (desired and current state "running") and their address on
  // network_id, sorted by address.
  std::vector<TaskAddress> running_task_addresses(const std::string& service, const std::string& network_id);

  // Images
  std::optional<json> inspect_image(const std::string& name);
  // POST /build with a tar build context (Dockerfile at its root); throws with the build's error.
  void build_image(std::string tar_context, const std::string& tag);
  // POST /images/create?fromSrc=- with a rootfs tarball.
  void import_image(std::string tar_rootfs, const std::string& repository, const std::string& tag);

  // GET /events?filters=..., streaming; see EventStream.
  EventStream events(const json& filters);

private:
  friend class EventStream;
  Response perform(std::string_view method, const std::string& target, std::string body, std::string_view content_type);

  std::string socket_path_;
  std::chrono::milliseconds timeout_;
  std::optional<std::string> api_version_;
};

// One connection to GET /events: next() returns each event object as Docker sends it (one JSON
// object per line), nullopt when none arrived within the wait. When the engine goes away next()
// throws DockerError (status 0); the caller reconnects (with back-off) and re-synchronises, as
// events sent while it was away are lost.
class EventStream {
public:
  EventStream(EventStream&&) noexcept;
  EventStream& operator=(EventStream&&) noexcept;
  ~EventStream();

  std::optional<json> next(std::chrono::milliseconds wait);

private:
  friend class DockerClient;
  struct State;
  explicit EventStream(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// "/networks?filters=%7B...%7D": JSON filters URL-encoded.
std::string with_filters(const std::string& path, const json& filters);
std::string url_encode(std::string_view text);

// A tar archive (ustar) of regular files, for build contexts: {path in archive, contents, mode}.
struct TarEntry {
  std::string path;
  std::string contents;
  unsigned mode = 0644;
};
std::string make_tar(const std::vector<TarEntry>& entries);

} // namespace xdpfwd::docker
