// The asking end of a control socket (include/xdpfwd/ingress_control.hpp): one JSON request,
// one JSON answer, bounded in time. Used by the daemon towards its ingresses.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>

namespace xdpfwd {

// Throws std::system_error naming the socket and what failed (connect, timeout, bad answer).
nlohmann::json control_request(const std::filesystem::path& socket, const nlohmann::json& request,
                               std::chrono::milliseconds timeout);

} // namespace xdpfwd
