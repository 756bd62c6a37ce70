// Runs one xdpfwd-ingress per ingress inside the ingress's network namespace: starts it, hands
// it the configuration over its control socket, restarts it with back-off when it dies (and
// logs how it died), and stops it on removal. An inspector left by a daemon that was killed is
// found through its pid file and replaced.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace xdpfwd {

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
  // taken its configuration; throws std::runtime_error saying why not.
  void start(const std::string& name, const std::string& netns);
  void stop(const std::string& name);
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
    int restarts = 0;
    std::chrono::steady_clock::time_point started;
    std::unique_ptr<boost::asio::steady_timer> restart_timer;
  };

  void spawn(Child& child);
  void on_child_exit();
  void schedule_restart(Child& child);
  void replace_leftover(const std::string& name) const;
  std::filesystem::path control_path(const std::string& name) const;
  std::filesystem::path pid_path(const std::string& name) const;

  boost::asio::io_context& io_;
  Settings settings_;
  nlohmann::json document_;
  boost::asio::signal_set child_signals_;
  std::map<std::string, Child> children_;
};

} // namespace xdpfwd
