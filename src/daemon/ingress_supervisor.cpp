#include "ingress_supervisor.hpp"

#include "xdpfwd/control_client.hpp"
#include "xdpfwd/ingress_control.hpp"
#include "xdpfwd/netns.hpp"
#include "xdpfwd/system_error.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

namespace xdpfwd {
namespace {

using namespace std::chrono_literals;

constexpr auto kConfigureTimeout = 10s; // from the start of an inspector to its first answer
constexpr auto kStopTimeout = 5s;
constexpr auto kStableRun = 30s;        // an inspector that ran this long restarts at once
constexpr auto kMaxBackoff = 30s;

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by ") + strsignal(WTERMSIG(status));
  return "stopped";
}

// Waits for pid to end within timeout, then SIGKILLs it; reaps it when it is our child.
void terminate(pid_t pid, bool ours) {
  // Inspectors run as nobody: signalling them takes CAP_KILL. Without it, waiting would be forever.
  if (::kill(pid, SIGTERM) < 0 && errno == EPERM) {
    spdlog::error("cannot stop the inspector pid {}: {} (the daemon needs CAP_KILL)", pid, std::strerror(errno));
    return;
  }
  auto ended = [&] { return ours ? ::waitpid(pid, nullptr, WNOHANG) == pid : ::kill(pid, 0) < 0; };
  const auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ended()) return;
    std::this_thread::sleep_for(20ms);
  }
  spdlog::warn("inspector pid {} ignored SIGTERM for {} s: SIGKILL", pid, kStopTimeout.count());
  ::kill(pid, SIGKILL);
  if (ours) ::waitpid(pid, nullptr, 0);
}

} // namespace

std::filesystem::path IngressSupervisor::default_binary() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path() / "xdpfwd-ingress";
}

IngressSupervisor::IngressSupervisor(boost::asio::io_context& io, Settings settings)
    : io_(io), settings_(std::move(settings)) {
  if (!std::filesystem::exists(settings_.binary))
    throw std::runtime_error("the ingress inspector " + settings_.binary.string() + " does not exist");
}

IngressSupervisor::~IngressSupervisor() {
  while (!children_.empty()) stop(children_.begin()->first);
}

void IngressSupervisor::release_all() {
  for (auto& [name, child] : children_) {
    child.restart_timer->cancel();
    if (child.exit_watch) child.exit_watch->close();
    if (child.pid > 0) spdlog::info("ingress {}: inspector (pid {}) left running for the next daemon", name, child.pid);
  }
  children_.clear();
}

std::filesystem::path IngressSupervisor::control_path(const std::string& name) const {
  return ingress_control_path(settings_.control_socket, name);
}

std::filesystem::path IngressSupervisor::pid_path(const std::string& name) const {
  return std::filesystem::path(settings_.control_socket).parent_path() / ("ingress-" + name + ".pid");
}

// A daemon that stopped for a restart, or was killed, leaves its inspectors running; the pid
// file names them.
std::optional<pid_t> IngressSupervisor::leftover(const std::string& name) const {
  std::ifstream file(pid_path(name));
  pid_t pid = 0;
  if (!(file >> pid) || pid <= 0) return std::nullopt;
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string first;
  std::getline(cmdline, first, '\0');
  if (std::filesystem::path(first).filename() != settings_.binary.filename()) return std::nullopt;
  return pid;
}

// A pidfd becomes readable when its process ends: one wait for children and adopted alike.
void IngressSupervisor::watch(Child& child) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child.pid, 0));
  if (pidfd < 0) throw_errno("watch the inspector of ingress " + child.name + " (pid " + std::to_string(child.pid) + ")");
  child.exit_watch = std::make_unique<boost::asio::posix::stream_descriptor>(io_, pidfd);
  child.exit_watch->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                               [this, name = child.name, pid = child.pid](const boost::system::error_code& error) {
                                 if (!error) on_exit(name, pid);
                               });
}

void IngressSupervisor::spawn(Child& child) {
  const UniqueFd netns = NamedNetns::open(child.netns);
  const std::string binary = settings_.binary.string();
  const std::string control = control_path(child.name).string();
  std::vector<const char*> argv = {binary.c_str(), "--ingress", child.name.c_str(), "--control", control.c_str(),
                                   "--log-level", settings_.log_level.c_str(), nullptr};
  std::filesystem::remove(control); // so that configure() waits for the new inspector's socket
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("start the inspector of ingress " + child.name);
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    if (::setns(netns.get(), CLONE_NEWNET) < 0) ::_exit(126);
    ::execv(argv[0], const_cast<char* const*>(argv.data()));
    ::_exit(127);
  }
  child.pid = pid;
  child.ours = true;
  child.started = std::chrono::steady_clock::now();
  std::ofstream(pid_path(child.name)) << pid << "\n";
  spdlog::info("ingress {}: inspector started (pid {})", child.name, pid);
  watch(child);
}

void IngressSupervisor::start(const std::string& name, const std::string& netns, bool adopt) {
  const auto old = leftover(name);
  Child& child = children_[name];
  child.name = name;
  child.netns = netns;
  child.restart_timer = std::make_unique<boost::asio::steady_timer>(io_);
  if (old && adopt) {
    child.pid = *old;
    child.ours = false;
    child.started = std::chrono::steady_clock::now();
    watch(child);
    spdlog::info("ingress {}: adopted the running inspector (pid {})", name, *old);
  } else {
    if (old) {
      spdlog::warn("ingress {}: stopping the inspector (pid {}) a previous run left", name, *old);
      ::kill(*old, SIGTERM);
      for (int i = 0; i < 250 && ::kill(*old, 0) == 0; ++i) std::this_thread::sleep_for(20ms);
      if (::kill(*old, 0) == 0) ::kill(*old, SIGKILL);
    }
    spawn(child);
  }
  configure(name);
}

void configure_inspector(const std::filesystem::path& control, const std::string& name, const nlohmann::json& document,
                         std::chrono::milliseconds timeout, const std::function<void()>& unreachable) {
  const nlohmann::json request = {{"op", "configure"}, {"ingress", name}, {"config", document}};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // The inspector's socket appears once it runs: retry until then.
  for (;;) {
    try {
      const auto answer = control_request(control, request, timeout);
      if (!answer.value("ok", false))
        throw std::runtime_error("ingress " + name + ": the inspector refused its configuration: " +
                                 answer.value("error", std::string("no reason given")));
      return;
    } catch (const std::system_error& error) {
      if (unreachable) unreachable();
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("ingress " + name + ": the inspector did not answer: " + error.what());
      std::this_thread::sleep_for(50ms);
    }
  }
}

void IngressSupervisor::configure(const std::string& name) {
  Child& child = children_.at(name);
  configure_inspector(control_path(name), name, document_, kConfigureTimeout, [&] {
    int status = 0;
    if (child.ours && ::waitpid(child.pid, &status, WNOHANG) == child.pid) {
      child.pid = 0;
      throw std::runtime_error("ingress " + name + ": the inspector " + describe_exit(status) + " before taking its configuration");
    }
  });
  spdlog::info("ingress {}: inspector configured (pid {})", name, child.pid);
}

nlohmann::json IngressSupervisor::status(const std::string& name) const {
  try {
    const auto answer = control_request(control_path(name), {{"op", "status"}}, 2s);
    if (answer.value("ok", false)) return answer.at("status");
    return {{"error", answer.value("error", std::string("no reason given"))}};
  } catch (const std::exception& error) {
    return {{"error", error.what()}};
  }
}

void IngressSupervisor::stop(const std::string& name) {
  auto found = children_.find(name);
  if (found == children_.end()) return;
  Child& child = found->second;
  child.restart_timer->cancel();
  if (child.exit_watch) child.exit_watch->close();
  if (child.pid > 0) {
    terminate(child.pid, child.ours);
    spdlog::info("ingress {}: inspector stopped", name);
  }
  // The inspector runs as nobody at the end: the socket it made in this root-owned directory is
  // the daemon's to remove.
  std::error_code ignored;
  std::filesystem::remove(pid_path(name), ignored);
  std::filesystem::remove(control_path(name), ignored);
  children_.erase(found);
}

void IngressSupervisor::on_exit(const std::string& name, pid_t pid) {
  auto found = children_.find(name);
  if (found == children_.end() || found->second.pid != pid) return;
  Child& child = found->second;
  std::string how = "ended"; // an adopted inspector is not our child: its status is init's
  if (int status = 0; child.ours && ::waitpid(pid, &status, 0) == pid) how = describe_exit(status);
  child.pid = 0;
  child.exit_watch.reset();
  spdlog::error("ingress {}: inspector {}; traffic to its service IPs goes to the ingress's kernel until it is back",
                name, how);
  schedule_restart(child);
}

// Back-off: 0.5 s, 1 s, 2 s, ... up to 30 s between attempts; at once again after a stable run.
void IngressSupervisor::schedule_restart(Child& child) {
  if (std::chrono::steady_clock::now() - child.started > kStableRun) child.restarts = 0;
  const auto delay = std::min<std::chrono::milliseconds>(500ms * (1 << std::min(child.restarts, 6)), kMaxBackoff);
  ++child.restarts;
  spdlog::info("ingress {}: restarting the inspector in {} ms", child.name, delay.count());
  child.restart_timer->expires_after(delay);
  child.restart_timer->async_wait([this, name = child.name](const boost::system::error_code& error) {
    if (error) return;
    auto found = children_.find(name);
    if (found == children_.end()) return;
    try {
      spawn(found->second);
      configure(name);
    } catch (const std::exception& failure) {
      spdlog::error("ingress {}: restarting the inspector failed: {}", name, failure.what());
      if (found->second.pid <= 0) schedule_restart(found->second);
    }
  });
}

} // namespace xdpfwd
