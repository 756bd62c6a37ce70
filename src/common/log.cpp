#include "xdpfwd/log.hpp"

#include <bpf/libbpf.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <xdp/libxdp.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace xdpfwd {
namespace {

// "%*" in the pattern: the sd-daemon(3) priority prefix of the message's level.
class SyslogPriorityFlag final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& message, const std::tm&, spdlog::memory_buf_t& out) override {
    static constexpr const char* kPrefix[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", ""};
    const std::string_view prefix = kPrefix[message.level];
    out.append(prefix.data(), prefix.data() + prefix.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SyslogPriorityFlag>();
  }
};

std::atomic<int> quiet_warnings{0};

// libbpf and libxdp print whole lines (with their own newline) through a printf-style callback.
template <typename Level>
int print_library_line(Level level, const char* library, const char* format, va_list args) {
  char line[1024];
  std::vsnprintf(line, sizeof(line), format, args);
  std::string_view text(line);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  spdlog::level::level_enum spdlog_level = spdlog::level::debug;
  if (static_cast<int>(level) == 0 && quiet_warnings == 0) spdlog_level = spdlog::level::warn; // LIBBPF_WARN, LIBXDP_WARN
  spdlog::log(spdlog_level, "{}: {}", library, text);
  return 0;
}

int print_libbpf(libbpf_print_level level, const char* format, va_list args) {
  return print_library_line(level, "libbpf", format, args);
}

int print_libxdp(libxdp_print_level level, const char* format, va_list args) {
  return print_library_line(level, "libxdp", format, args);
}

} // namespace

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long device = 0, inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  struct stat info {};
  return ::fstat(STDERR_FILENO, &info) == 0 && info.st_dev == device && info.st_ino == inode;
}

void setup_logging(const std::string& level, const std::string& prefix) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    throw std::invalid_argument("unknown log level \"" + level + "\"");
  auto logger = std::make_shared<spdlog::logger>("xdpfwd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  // spdlog patterns treat '%' specially; a prefix never has one (ingress names are [a-z0-9-]).
  const std::string lead = prefix.empty() ? "" : prefix + ": ";
  if (stderr_is_journal())
    formatter->add_flag<SyslogPriorityFlag>('*').set_pattern("%*" + lead + "%v");
  else
    formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ " + lead + "%v");
  logger->set_formatter(std::move(formatter));
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::trace); // the log is the operator's record: no line may be lost
  spdlog::set_default_logger(std::move(logger));
}

QuietBpfLibraryWarnings::QuietBpfLibraryWarnings() { ++quiet_warnings; }
QuietBpfLibraryWarnings::~QuietBpfLibraryWarnings() { --quiet_warnings; }

void route_bpf_library_logs() {
  libbpf_set_print(print_libbpf);
  libxdp_set_print(print_libxdp);
}

} // namespace xdpfwd
