// The host XDP program (bpf/xdpfwd.bpf.c): loaded from the embedded skeleton, maps pinned under
// the pin dir, attached to the host's interfaces through libxdp so that it shares them with other
// XDP programs. Owning handle: the destructor detaches and unpins.
//
// A start is a transaction on what the previous run left: until commit(), destruction (or a
// constructor that throws) leaves the previous run's pins and programs as they were.
#pragma once

#include "xdpfwd/config.hpp"
#include "xdpfwd/unique_fd.hpp"
#include "xdpfwd_abi.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

struct xdpfwd_bpf;
struct bpf_map;
struct xdp_program;

namespace xdpfwd {

class HostXdp {
public:
  // Loads the program with its maps pinned in pin_dir. Maps already pinned there by an earlier
  // run are adopted: with keep_entries (a restart that kept them on purpose) as they are,
  // otherwise emptied, so that entries of a run that died cannot linger. A pin of another layout
  // (an earlier xdpfwd version's) is moved aside to <name>:old, a new map takes its path and gets
  // the old entries where their layout allows; the :old pin stays until commit().
  HostXdp(std::filesystem::path pin_dir, bool keep_entries);
  HostXdp(const HostXdp&) = delete;
  HostXdp& operator=(const HostXdp&) = delete;
  // Before commit(): the previous run's programs go back where attach() replaced them, the
  // :old pins back to their paths, and only the pins this object created are removed, so the
  // previous run goes on as it was. After: detaches and unpins everything (unless released).
  ~HostXdp();

  // The start is complete (every configured interface attached): the :old pins of an upgrade
  // are removed and the start can no longer be undone.
  void commit();

  // Attaches to an interface of the calling thread's network namespace, replacing an xdpfwd
  // program a previous run left there. xdp_mode auto falls back to generic mode, with a warning.
  void attach(const config::Interface& interface);
  // Detaches from one interface (a reload removed it); false if not attached there.
  bool detach(const std::string& interface);
  bool attached(const std::string& interface) const;

  void set_service(const config::IpAddress& address, const xdpfwd_service_value& target);
  void remove_service(const config::IpAddress& address);
  void add_ingress_dev(int ifindex);
  void remove_ingress_dev(int ifindex);
  // Zeroes a slot of service_stats on every CPU, before a new service IP takes it.
  void reset_stats(std::uint32_t stats_index);

  // Leaves the program attached and the maps pinned when this object goes: for the next run.
  // Before commit(), the pin dir still goes back as the start found it.
  void release() { released_ = true; }

  int service_stats_fd() const;
  int malformed_fd() const;
  int ingress_devs_fd() const;
  const std::filesystem::path& pin_dir() const { return pin_dir_; }

private:
  struct Attachment {
    std::string interface;
    int ifindex;
    int mode; // enum xdp_attach_mode
    xdp_program* program; // nullptr: attached in place of a previous run's program, not through libxdp
    UniqueFd previous; // that previous program, until commit(): what an undone start puts back
  };
  // What the constructor did to the pin dir, undone on destruction unless committed: a member,
  // so that a constructor which throws half-way (it runs no destructor) undoes it too.
  class PinTransaction {
  public:
    explicit PinTransaction(std::filesystem::path pin_dir) : pin_dir_(std::move(pin_dir)) {}
    PinTransaction(const PinTransaction&) = delete;
    PinTransaction& operator=(const PinTransaction&) = delete;
    ~PinTransaction();

    // A pin that did not exist: removed if undone.
    void created(const std::string& name) { created_.push_back(name); }
    // Renames the pin to <name>:old for a new map to take its place: renamed back if undone.
    void move_aside(const std::string& name);
    // Removes the :old pins.
    void commit();
    bool committed() const { return committed_; }

  private:
    std::filesystem::path pin_dir_;
    std::vector<std::string> created_;
    std::vector<std::string> moved_aside_;
    bool committed_ = false;
  };
  struct SkeletonDeleter {
    void operator()(xdpfwd_bpf* skeleton) const;
  };

  void empty_adopted_maps();
  static void warn_if_alone(const std::string& name, int ifindex);
  int detach(const Attachment& attachment) noexcept;
  void detach_all() noexcept;
  void unpin() noexcept;

  std::filesystem::path pin_dir_;
  PinTransaction pins_;
  std::unique_ptr<xdpfwd_bpf, SkeletonDeleter> skeleton_;
  xdp_program* program_ = nullptr; // the libxdp view of the skeleton's program
  std::vector<Attachment> attachments_;
  bool released_ = false;
};

} // namespace xdpfwd
