#include "docker_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <charconv>
#include <limits>
#include <cstdio>
#include <functional>
#include <thread>

namespace xdpfwd::docker {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using Socket = asio::local::stream_protocol::socket;
using boost::system::error_code;
using namespace std::chrono_literals;

constexpr std::size_t kBodyLimit = 256u << 20; // image inspect and build logs stay far below

// Runs the io_context until `done` or the deadline; on the deadline cancels the socket's work
// and lets the handlers finish. Returns false on the deadline.
bool run_until(asio::io_context& io, Socket& socket, const bool& done, std::chrono::milliseconds timeout) {
  io.restart();
  io.run_for(timeout);
  if (done) return true;
  error_code ignored;
  socket.cancel(ignored);
  io.restart();
  io.run();
  return false;
}

std::string short_body(const std::string& body) {
  std::string text = body.substr(0, 300);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// Docker's errors are {"message": "..."}; anything else is quoted as it came.
std::string docker_message(const std::string& body) {
  const json parsed = json::parse(body, nullptr, false);
  if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string())
    return parsed["message"].get<std::string>();
  return short_body(body);
}

std::string status_text(int status) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  return std::to_string(status) + (reason.empty() ? "" : " " + std::string(reason));
}

Socket connect(asio::io_context& io, const std::string& path, std::chrono::milliseconds timeout,
               const std::string& request) {
  Socket socket(io);
  error_code result;
  bool done = false;
  socket.async_connect(asio::local::stream_protocol::endpoint(path), [&](error_code error) {
    result = error;
    done = true;
  });
  if (!run_until(io, socket, done, timeout)) throw DockerError(0, request, "cannot connect to " + path + ": timed out");
  if (result) throw DockerError(0, request, "cannot connect to " + path + ": " + result.message());
  return socket;
}

void strip_prefix(std::string& address) {
  if (const auto slash = address.find('/'); slash != std::string::npos) address.resize(slash);
}

} // namespace

DockerError::DockerError(int status, std::string request, std::string message)
    : std::runtime_error("docker: " + request + ": " + (status ? status_text(status) + ": " : std::string()) + message),
      status_(status), request_(std::move(request)), message_(std::move(message)) {}

std::optional<ApiVersion> ApiVersion::parse(std::string_view text) {
  ApiVersion version;
  const auto dot = text.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto major = std::from_chars(text.data(), text.data() + dot, version.major);
  const auto minor = std::from_chars(text.data() + dot + 1, text.data() + text.size(), version.minor);
  if (major.ec != std::errc() || major.ptr != text.data() + dot || minor.ec != std::errc() ||
      minor.ptr != text.data() + text.size())
    return std::nullopt;
  return version;
}

json Response::parsed() const {
  if (body.empty()) return nullptr;
  return json::parse(body);
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string with_filters(const std::string& path, const json& filters) {
  if (filters.empty()) return path;
  return path + (path.find('?') == std::string::npos ? "?" : "&") + "filters=" + url_encode(filters.dump());
}

// ustar: 512-byte header per file, contents padded to 512, two zero blocks at the end.
std::string make_tar(const std::vector<TarEntry>& entries) {
  std::string archive;
  for (const auto& entry : entries) {
    if (entry.path.size() > 99) throw std::invalid_argument("tar: path too long: " + entry.path);
    char header[512] = {};
    std::snprintf(header, 100, "%s", entry.path.c_str());
    std::snprintf(header + 100, 8, "%07o", entry.mode);
    std::snprintf(header + 108, 8, "%07o", 0u);
    std::snprintf(header + 116, 8, "%07o", 0u);
    std::snprintf(header + 124, 12, "%011llo", static_cast<unsigned long long>(entry.contents.size()));
    std::snprintf(header + 136, 12, "%011o", 0u);
    header[156] = '0';
    std::memcpy(header + 257, "ustar", 6);
    std::memcpy(header + 263, "00", 2);
    std::memset(header + 148, ' ', 8);
    unsigned checksum = 0;
    for (const unsigned char c : header) checksum += c;
    std::snprintf(header + 148, 8, "%06o", checksum);
    archive.append(header, sizeof header);
    archive += entry.contents;
    archive.append((512 - entry.contents.size() % 512) % 512, '\0');
  }
  archive.append(1024, '\0');
  return archive;
}

DockerClient::DockerClient(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

Response DockerClient::perform(std::string_view method, const std::string& target, std::string body,
                               std::string_view content_type) {
  const std::string what = std::string(method) + " " + target;
  asio::io_context io;
  Socket socket = connect(io, socket_path_, timeout_, what);

  http::request<http::string_body> request(http::string_to_verb(boost::beast::string_view(method.data(), method.size())),
                                           target, 11);
  request.set(http::field::host, "docker");
  request.set(http::field::user_agent, "xdpfwd");
  if (!body.empty() || method == "POST") {
    request.set(http::field::content_type, boost::beast::string_view(content_type.data(), content_type.size()));
    request.body() = std::move(body);
  }
  request.prepare_payload();

  error_code result;
  bool done = false;
  http::async_write(socket, request, [&](error_code error, std::size_t) {
    result = error;
    done = true;
  });
  if (!run_until(io, socket, done, timeout_)) throw DockerError(0, what, "timed out sending the request");
  if (result) throw DockerError(0, what, "sending the request: " + result.message());

  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kBodyLimit);
  done = false;
  http::async_read(socket, buffer, parser, [&](error_code error, std::size_t) {
    result = error;
    done = true;
  });
  if (!run_until(io, socket, done, timeout_))
    throw DockerError(0, what, "no answer within " + std::to_string(timeout_.count()) + " ms");
  if (result) throw DockerError(0, what, "reading the answer: " + result.message());

  Response response{static_cast<int>(parser.get().result_int()), parser.get().body()};
  if (response.status >= 400) throw DockerError(response.status, what, docker_message(response.body));
  return response;
}

json DockerClient::version() { return perform("GET", "/version", {}, "").parsed(); }

std::string DockerClient::api_version() {
  if (api_version_) return *api_version_;
  const json answer = version();
  const std::string offered = answer.value("ApiVersion", std::string());
  const auto server = ApiVersion::parse(offered);
  if (!server) throw DockerError(200, "GET /version", "the engine names no usable ApiVersion: " + answer.dump());
  if (*server < kMinApiVersion)
    throw DockerError(200, "GET /version",
                      "Docker " + answer.value("Version", std::string("?")) + " speaks API " + offered +
                          ", older than the " + kMinApiVersion.to_string() + " xdpfwd needs");
  api_version_ = std::min(*server, kMaxApiVersion).to_string();
  return *api_version_;
}

Response DockerClient::request(std::string_view method, const std::string& path, const std::optional<json>& body,
                               std::string_view content_type) {
  return perform(method, "/v" + api_version() + path, body ? body->dump() : std::string(), content_type);
}

Response DockerClient::request_raw(std::string_view method, const std::string& path, std::string body,
                                   std::string_view content_type) {
  return perform(method, "/v" + api_version() + path, std::move(body), content_type);
}

// Networks -----------------------------------------------------------------------------------

std::optional<json> DockerClient::inspect_network(const std::string& name_or_id) {
  try {
    // A swarm network by name may be ambiguous with a prefix of an Id; the exact name wins.
    return request("GET", "/networks/" + url_encode(name_or_id)).parsed();
  } catch (const DockerError& error) {
    if (error.not_found()) return std::nullopt;
    throw;
  }
}

std::string DockerClient::create_overlay(const OverlaySpec& spec) {
  json ipam_config = json::array({{{"Subnet", spec.subnet}}});
  if (!spec.gateway.empty()) ipam_config[0]["Gateway"] = spec.gateway;
  if (!spec.ip_range.empty()) ipam_config[0]["IPRange"] = spec.ip_range;
  if (!spec.subnet6.empty()) {
    json v6 = {{"Subnet", spec.subnet6}};
    if (!spec.gateway6.empty()) v6["Gateway"] = spec.gateway6;
    if (!spec.ip_range6.empty()) v6["IPRange"] = spec.ip_range6;
    ipam_config.push_back(v6);
  }
  const json body = {
      {"Name", spec.name},
      {"Driver", "overlay"},
      {"CheckDuplicate", true},
      {"Attachable", true},
      {"Internal", spec.internal},
      {"EnableIPv6", !spec.subnet6.empty()},
      {"IPAM", {{"Driver", "default"}, {"Config", ipam_config}}},
      {"Options", {{"com.docker.network.driver.overlay.vxlanid_list", std::to_string(spec.vni)}}},
      {"Labels", spec.labels},
  };
  return request("POST", "/networks/create", body).parsed().at("Id").get<std::string>();
}

void DockerClient::remove_network(const std::string& name_or_id) {
  try {
    request("DELETE", "/networks/" + url_encode(name_or_id));
  } catch (const DockerError& error) {
    if (!error.not_found()) throw;
  }
}

std::vector<json> DockerClient::list_networks(const json& filters) {
  return request("GET", with_filters("/networks", filters)).parsed().get<std::vector<json>>();
}

// Containers ---------------------------------------------------------------------------------

std::string DockerClient::create_container(const std::string& name, const json& config) {
  return request("POST", "/containers/create?name=" + url_encode(name), config).parsed().at("Id").get<std::string>();
}

void DockerClient::start_container(const std::string& id) {
  request("POST", "/containers/" + url_encode(id) + "/start"); // 304: already running, not an error
}

std::optional<json> DockerClient::inspect_container(const std::string& name_or_id) {
  try {
    return request("GET", "/containers/" + url_encode(name_or_id) + "/json").parsed();
  } catch (const DockerError& error) {
    if (error.not_found()) return std::nullopt;
    throw;
  }
}

void DockerClient::kill_container(const std::string& id, const std::string& signal) {
  request("POST", "/containers/" + url_encode(id) + "/kill?signal=" + url_encode(signal));
}

void DockerClient::stop_container(const std::string& id, int timeout_seconds) {
  request("POST", "/containers/" + url_encode(id) + "/stop?t=" + std::to_string(timeout_seconds));
}

void DockerClient::remove_container(const std::string& id, bool force) {
  try {
    request("DELETE", "/containers/" + url_encode(id) + (force ? "?force=true" : ""));
  } catch (const DockerError& error) {
    if (!error.not_found()) throw;
  }
}

std::vector<json> DockerClient::list_containers(const json& filters, bool all) {
  return request("GET", with_filters(std::string("/containers/json?all=") + (all ? "true" : "false"), filters))
      .parsed()
      .get<std::vector<json>>();
}

// Services and tasks -------------------------------------------------------------------------

std::optional<json> DockerClient::inspect_service(const std::string& name_or_id) {
  try {
    return request("GET", "/services/" + url_encode(name_or_id)).parsed();
  } catch (const DockerError& error) {
    if (error.not_found()) return std::nullopt;
    throw;
  }
}

void DockerClient::update_service(const std::string& id, std::uint64_t version, const json& spec) {
  request("POST", "/services/" + url_encode(id) + "/update?version=" + std::to_string(version), spec);
}

namespace {

bool network_listed(const json& networks, const std::string& network_id) {
  return std::any_of(networks.begin(), networks.end(),
                     [&](const json& n) { return n.value("Target", std::string()) == network_id; });
}

// Read-modify-write of a service spec: Docker refuses an update whose version is no longer the
// service's (another writer came first); then read again and redo the change.
template <class Change>
bool update_service_spec(DockerClient& client, const std::string& service, Change change) {
  for (int attempt = 0;; ++attempt) {
    const auto current = client.inspect_service(service);
    if (!current) throw DockerError(404, "GET /services/" + service, "service " + service + " not found");
    json spec = current->at("Spec");
    if (!change(spec)) return false;
    try {
      client.update_service(current->at("ID").get<std::string>(), current->at("Version").at("Index").get<std::uint64_t>(),
                            spec);
      return true;
    } catch (const DockerError& error) {
      const bool out_of_sequence = error.message().find("update out of sequence") != std::string::npos;
      if (!out_of_sequence || attempt >= 5) throw;
      std::this_thread::sleep_for(50ms * (attempt + 1));
    }
  }
}

} // namespace

bool DockerClient::attach_service_network(const std::string& service, const std::string& network_id,
                                          const std::map<std::string, std::string>& labels) {
  return update_service_spec(*this, service, [&](json& spec) {
    json& task_template = spec["TaskTemplate"];
    json networks = task_template.value("Networks", json::array());
    // Services made with old clients list their networks in Spec.Networks (deprecated): the
    // engine takes one place or the other, so move them along.
    if (spec.contains("Networks") && spec["Networks"].is_array()) {
      for (const auto& n : spec["Networks"])
        if (!network_listed(networks, n.value("Target", std::string()))) networks.push_back(n);
      spec.erase("Networks");
    }
    if (network_listed(networks, network_id)) return false;
    networks.push_back({{"Target", network_id}});
    task_template["Networks"] = networks;
    for (const auto& [key, value] : labels) spec["Labels"][key] = value;
    return true;
  });
}

bool DockerClient::detach_service_network(const std::string& service, const std::string& network_id,
                                          const std::vector<std::string>& label_keys) {
  return update_service_spec(*this, service, [&](json& spec) {
    json& task_template = spec["TaskTemplate"];
    json networks = task_template.value("Networks", json::array());
    if (!network_listed(networks, network_id)) return false;
    json kept = json::array();
    for (const auto& n : networks)
      if (n.value("Target", std::string()) != network_id) kept.push_back(n);
    task_template["Networks"] = kept;
    if (spec.contains("Labels") && spec["Labels"].is_object())
      for (const auto& key : label_keys) spec["Labels"].erase(key);
    return true;
  });
}

std::vector<json> DockerClient::list_tasks(const json& filters) {
  return request("GET", with_filters("/tasks", filters)).parsed().get<std::vector<json>>();
}

std::vector<TaskAddress> DockerClient::running_task_addresses(const std::string& service, const std::string& network_id) {
  std::vector<TaskAddress> result;
  const auto found = inspect_service(service);
  if (!found) throw DockerError(404, "GET /services/" + service, "service " + service + " not found");
  const std::string service_id = found->at("ID").get<std::string>();
  const json filters = {{"service", {service_id}}, {"desired-state", {"running"}}};
  for (const json& task : list_tasks(filters)) {
    // The filter matches by prefix: keep this service's tasks only.
    if (task.value("ServiceID", std::string()) != service_id) continue;
    const json& status = task.value("Status", json::object());
    if (status.value("State", std::string()) != "running") continue;
    for (const json& attachment : task.value("NetworksAttachments", json::array())) {
      if (attachment.value("Network", json::object()).value("ID", std::string()) != network_id) continue;
      for (const json& address : attachment.value("Addresses", json::array())) {
        TaskAddress entry{.task_id = task.value("ID", std::string()),
                          .container_id = status.value("ContainerStatus", json::object()).value("ContainerID", std::string()),
                          .node_id = task.value("NodeID", std::string()),
                          .address = address.get<std::string>(),
                          .slot = task.value("Slot", 0)};
        strip_prefix(entry.address);
        result.push_back(std::move(entry));
      }
    }
  }
  std::sort(result.begin(), result.end(), [](const TaskAddress& a, const TaskAddress& b) { return a.address < b.address; });
  return result;
}

// Images -------------------------------------------------------------------------------------

std::optional<json> DockerClient::inspect_image(const std::string& name) {
  try {
    return request("GET", "/images/" + url_encode(name) + "/json").parsed();
  } catch (const DockerError& error) {
    if (error.not_found()) return std::nullopt;
    throw;
  }
}

namespace {

// /build and /images/create answer 200 and then report progress, and errors, as JSON lines.
void check_progress(const std::string& what, const std::string& body) {
  std::size_t start = 0;
  while (start < body.size()) {
    const auto end = std::min(body.find('\n', start), body.size());
    const json line = json::parse(body.substr(start, end - start), nullptr, false);
    if (line.is_object() && line.contains("error"))
      throw DockerError(200, what, line["error"].is_string() ? line["error"].get<std::string>() : line["error"].dump());
    start = end + 1;
  }
}

} // namespace

void DockerClient::build_image(std::string tar_context, const std::string& tag) {
  const std::string path = "/build?t=" + url_encode(tag) + "&rm=1&forcerm=1";
  check_progress("POST " + path, request_raw("POST", path, std::move(tar_context), "application/x-tar").body);
}

void DockerClient::import_image(std::string tar_rootfs, const std::string& repository, const std::string& tag) {
  const std::string path = "/images/create?fromSrc=-&repo=" + url_encode(repository) + "&tag=" + url_encode(tag);
  check_progress("POST " + path, request_raw("POST", path, std::move(tar_rootfs), "application/x-tar").body);
}

// Events -------------------------------------------------------------------------------------

struct EventStream::State {
  asio::io_context io;
  Socket socket{io};
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  std::string pending; // body bytes not yet split into lines
  std::string what;
  // Beast keeps a reference to the chunk callback: it lives here, beside the parser.
  std::function<std::size_t(std::uint64_t, boost::beast::string_view, error_code&)> on_chunk;
};

EventStream::EventStream(std::unique_ptr<State> state) : state_(std::move(state)) {}
EventStream::EventStream(EventStream&&) noexcept = default;
EventStream& EventStream::operator=(EventStream&&) noexcept = default;
EventStream::~EventStream() = default;

EventStream DockerClient::events(const json& filters) {
  auto state = std::make_unique<EventStream::State>();
  const std::string target = "/v" + api_version() + with_filters("/events", filters);
  state->what = "GET " + target;
  state->socket = connect(state->io, socket_path_, timeout_, state->what);

  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "docker");
  request.set(http::field::user_agent, "xdpfwd");
  error_code result;
  bool done = false;
  http::async_write(state->socket, request, [&](error_code error, std::size_t) {
    result = error;
    done = true;
  });
  if (!run_until(state->io, state->socket, done, timeout_) || result)
    throw DockerError(0, state->what, "sending the request: " + (result ? result.message() : "timed out"));

  // The body is unbounded: each chunk goes to `pending` instead of a body object.
  auto& parser = state->parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max()); // boost::none trips a Beast 1.74 bug
  state->on_chunk = [raw = state.get()](std::uint64_t, boost::beast::string_view data, error_code&) {
    raw->pending.append(data.data(), data.size());
    return data.size();
  };
  parser.on_chunk_body(state->on_chunk);
  done = false;
  http::async_read_header(state->socket, state->buffer, parser, [&](error_code error, std::size_t) {
    result = error;
    done = true;
  });
  if (!run_until(state->io, state->socket, done, timeout_) || result)
    throw DockerError(0, state->what, "reading the answer: " + (result ? result.message() : "timed out"));
  const int status = static_cast<int>(parser.get().result_int());
  if (status != 200) {
    // An error answer has an ordinary body: read it whole for Docker's message.
    done = false;
    http::async_read(state->socket, state->buffer, parser, [&](error_code error, std::size_t) {
      result = error;
      done = true;
    });
    run_until(state->io, state->socket, done, timeout_);
    throw DockerError(status, state->what, docker_message(parser.get().body() + state->pending));
  }
  return EventStream(std::move(state));
}

std::optional<json> EventStream::next(std::chrono::milliseconds wait) {
  State& s = *state_;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    // A whole line already received?
    if (const auto newline = s.pending.find('\n'); newline != std::string::npos) {
      const std::string line = s.pending.substr(0, newline);
      s.pending.erase(0, newline + 1);
      if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
      json event = json::parse(line, nullptr, false);
      if (event.is_discarded()) throw DockerError(200, s.what, "an event that is not JSON: " + short_body(line));
      return event;
    }
    // Bytes received but not parsed yet (what came with the header, or a split chunk header).
    if (s.buffer.size() > 0) {
      error_code error;
      const auto used = s.parser.put(s.buffer.data(), error);
      s.buffer.consume(used);
      if (error && error != http::error::need_more) throw DockerError(200, s.what, "the event stream: " + error.message());
      if (s.parser.is_done()) throw DockerError(0, s.what, "the engine ended the event stream");
      if (used > 0) continue;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) return std::nullopt;
    error_code result;
    std::size_t received = 0;
    bool done = false;
    s.socket.async_read_some(s.buffer.prepare(16384), [&](error_code error, std::size_t n) {
      result = error;
      received = n;
      done = true;
    });
    run_until(s.io, s.socket, done, left);
    s.buffer.commit(received);
    if (result == asio::error::operation_aborted) {
      if (received == 0) return std::nullopt; // no event within the wait
    } else if (result) {
      throw DockerError(0, s.what, result == asio::error::eof ? "the engine closed the event stream"
                                                             : "the event stream: " + result.message());
    }
  }
}

} // namespace xdpfwd::docker
