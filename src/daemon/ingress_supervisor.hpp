// Runs one xdpfwd-ingress per ingress inside the ingress's network namespace: starts it, hands
// it the configuration over its control socket, restarts it with back-off when it dies (and
// logs how it died), and stops it on removal. Inspectors outlive a daemon restart: the next
// daemon finds them through their pid files and adopts them (or replaces them, when it starts
// afresh). Each inspector is watched through a pidfd, its own children and adopted ones alike.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace xdpfwd {

// Sends {"op":"configure","ingress":name,"config":document} to the inspector behind control,
// retrying while its socket is not there yet (it may be starting) until timeout; throws
// std::runtime_error when it refuses or never answers. unreachable (optional) runs after each
// failed attempt and may throw to give up early (the inspector died).
void configure_inspector(const std::filesystem::path& control, const std::string& name, const nlohmann::json& document,
                         std::chrono::milliseconds timeout, const std::function<void()>& unreachable = {});

class IngressSupervisor {
public:
  struct Settings {
    std::filesystem::path binary;       // xdpfwd-ingress
    std::string control_socket;         // the daemon's; ingress sockets and pid files go beside it
    std::string log_level = "info";
  };

  IngressSupervisor(boost::asio::io_context& io, Settings settings);
  ~IngressSupervisor(); // stops every inspector

  // The whole services.json, as sent to each inspector with its name.
  void set_config(nlohmann::json document) { document_ = std::move(document); }

  // Starts the inspector of ingress `name` in the named netns and waits (bounded) until it has
  // taken its configuration; throws std::runtime_error saying why not. With adopt, an inspector
  // a previous daemon left running there is kept (and configured) instead.
  void start(const std::string& name, const std::string& netns, bool adopt = false);
  void stop(const std::string& name);
  // Forgets every inspector without stopping it: they outlive this daemon (a restart).
  void release_all();
  // Sends the current configuration again (after set_config); throws when it is refused.
  void configure(const std::string& name);
  // The inspector's status answer, or {"error": ...} when it cannot give one.
  nlohmann::json status(const std::string& name) const;

  static std::filesystem::path default_binary(); // next to this executable

private:
  struct Child {
    std::string name;
    std::string netns;
    pid_t pid = 0;
    bool ours = true; // forked by this daemon (reaped with waitpid), or adopted
    int restarts = 0;
    std::chrono::steady_clock::time_point started;
    std::unique_ptr<boost::asio::steady_timer> restart_timer;
    std::unique_ptr<boost::asio::posix::stream_descriptor> exit_watch; // the pidfd
  };

  void spawn(Child& child);
  void watch(Child& child);
  void on_exit(const std::string& name, pid_t pid);
  void schedule_restart(Child& child);
  // The pid of a live inspector a previous daemon left for this ingress, if any.
  std::optional<pid_t> leftover(const std::string& name) const;
  std::filesystem::path control_path(const std::string& name) const;
  std::filesystem::path pid_path(const std::string& name) const;

  boost::asio::io_context& io_;
  Settings settings_;
  nlohmann::json document_;
  std::map<std::string, Child> children_;
};

} // namespace xdpfwd
