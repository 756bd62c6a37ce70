// xdpfwd: the host daemon. `xdpfwd --config FILE` runs it in the foreground (systemd Type=notify);
// `xdpfwd --check --config FILE` validates a file, one line per error, like `nginx -t`.
#include "counters.hpp"
#include "daemon.hpp"
#include "xdpfwd/config.hpp"
#include "xdpfwd/ingress_control.hpp"
#include "xdpfwd/log.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <string_view>

namespace {

constexpr const char* kDefaultConfig = "/etc/xdpfwd/services.json";

void print_usage(std::ostream& out) {
  out << "usage: xdpfwd [--config FILE] [--check | --counters]\n"
         "  --config FILE  services file (default " << kDefaultConfig << ")\n"
         "  --check        validate FILE and exit: 0 if valid, 1 with one line per error\n"
         "  --counters     print the XDP counters per service IP of the daemon running with FILE\n"
         "  --version      print the version\n";
}

int check(const std::string& file) {
  const auto result = xdpfwd::config::load_file(file);
  for (const auto& error : result.errors) std::cerr << "xdpfwd: " << file << ": " << to_string(error) << "\n";
  if (!result.errors.empty()) {
    std::cerr << "xdpfwd: configuration file " << file << " test failed\n";
    return 1;
  }
  std::cout << "xdpfwd: configuration file " << file << " test is successful\n";
  return 0;
}

int print_counters(const std::string& file) {
  const auto result = xdpfwd::config::load_file(file);
  for (const auto& error : result.errors) std::cerr << "xdpfwd: " << file << ": " << to_string(error) << "\n";
  if (!result.errors.empty()) return 1;
  std::cout << xdpfwd::format_counters(xdpfwd::read_pinned_counters(*result.config));
  return 0;
}

int run(const std::string& file) {
  xdpfwd::setup_logging("info");
  auto result = xdpfwd::config::load_file(file);
  if (!result.errors.empty()) {
    for (const auto& error : result.errors) spdlog::error("{}: {}", file, to_string(error));
    spdlog::critical("{}: {} errors, not starting", file, result.errors.size());
    return 1;
  }
  xdpfwd::setup_logging(result.config->log_level);
  xdpfwd::route_bpf_library_logs();
  try {
    xdpfwd::ingress_transport_from_environment(); // every inspector would fail on a bad one
  } catch (const std::invalid_argument& error) {
    spdlog::critical("{}, not starting", error.what());
    return 1;
  }
  spdlog::info("xdpfwd " XDPFWD_VERSION " starting with {}", file);
  std::ifstream text(file);
  return xdpfwd::Daemon(file, std::move(*result.config), nlohmann::json::parse(text)).run();
}

} // namespace

int main(int argc, char** argv) {
  std::string config_file = kDefaultConfig;
  enum class Mode { Run, Check, Counters } mode = Mode::Run;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_file = argv[++i];
    } else if (arg == "--check" || arg == "-t") {
      mode = Mode::Check;
    } else if (arg == "--counters") {
      mode = Mode::Counters;
    } else if (arg == "--help" || arg == "-h") {
      print_usage(std::cout);
      return 0;
    } else if (arg == "--version") {
      std::cout << "xdpfwd " XDPFWD_VERSION "\n";
      return 0;
    } else {
      std::cerr << "xdpfwd: unknown argument \"" << arg << "\"\n";
      print_usage(std::cerr);
      return 2;
    }
  }
  try {
    switch (mode) {
    case Mode::Check: return check(config_file);
    case Mode::Counters: return print_counters(config_file);
    case Mode::Run: return run(config_file);
    }
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "xdpfwd: " << error.what() << "\n";
    return 1;
  }
}
