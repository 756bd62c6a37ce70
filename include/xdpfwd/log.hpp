// Logging set-up: spdlog to stderr. Under systemd (JOURNAL_STREAM names our stderr) every line
// starts with its syslog priority ("<4>"), so journald keeps the levels and adds its own time
// stamps; elsewhere lines carry a time stamp and the level name.
#pragma once

#include <string>

namespace xdpfwd {

// Throws std::invalid_argument for an unknown level name. A prefix ("ingress waf") starts
// every line, for processes whose output shares the daemon's journal stream.
void setup_logging(const std::string& level, const std::string& prefix = "");
// Whether stderr is connected to the journal (JOURNAL_STREAM matches its device and inode).
bool stderr_is_journal();
// Routes libbpf's and libxdp's messages (verifier logs included) into the log.
void route_bpf_library_logs();

// While one exists, libbpf's and libxdp's warnings are logged at debug level: for attempts whose
// failure is expected and explained by the caller (libxdp trying its dispatcher where the kernel
// refuses freplace programs prints a misleading "try raising ulimit -l").
class QuietBpfLibraryWarnings {
public:
  QuietBpfLibraryWarnings();
  ~QuietBpfLibraryWarnings();
  QuietBpfLibraryWarnings(const QuietBpfLibraryWarnings&) = delete;
  QuietBpfLibraryWarnings& operator=(const QuietBpfLibraryWarnings&) = delete;
};

} // namespace xdpfwd
