// The Prometheus text exposition (format 0.0.4) of the daemon's status document (what
// `xdpfwdctl status --json` shows): the same figures as counters and gauges labelled by
// ingress, service, replica and reason.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace xdpfwd {

std::string prometheus_text(const nlohmann::json& status, std::uint64_t reloads_applied, std::uint64_t reloads_rejected);

} // namespace xdpfwd
