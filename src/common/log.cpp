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
#include <string>
#include <string_view>

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

// libbpf and libxdp print through a printf-style callback, mostly one line per call; but libbpf
// prints a whole verifier log with one call. Formatted whole (no length limit: the verifier's
// reason is at the end) and logged line by line, so every line keeps its level in the journal.
template <typename Level>
int print_library_line(Level level, const char* library, const char* format, va_list args) {
  va_list measure;
  va_copy(measure, args);
  const int length = std::vsnprintf(nullptr, 0, format, measure);
  va_end(measure);
  if (length <= 0) return 0;
  std::string text(static_cast<size_t>(length) + 1, '\0');
  std::vsnprintf(text.data(), text.size(), format, args);
  text.resize(static_cast<size_t>(length));
  spdlog::level::level_enum spdlog_level = spdlog::level::debug;
  if (static_cast<int>(level) == 0 && quiet_warnings == 0) spdlog_level = spdlog::level::warn; // LIBBPF_WARN, LIBXDP_WARN
  std::string_view rest(text);
  const std::string own_prefix = std::string(library) + ": "; // which most messages carry already
  if (rest.starts_with(own_prefix)) rest.remove_prefix(own_prefix.size());
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    spdlog::log(spdlog_level, "{}: {}", library, rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
  }
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
