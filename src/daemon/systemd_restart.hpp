// Whether the stop under way is systemd restarting this unit (`systemctl restart xdpfwd`): then
// the daemon leaves the XDP path, the ingresses and their inspectors running for the next run.
#pragma once

namespace xdpfwd {

// Asks systemd over D-Bus for the job of the unit this process runs in; false when not run by
// systemd, when there is no job, or when the job is not a restart.
bool systemd_restarting_this_unit();

} // namespace xdpfwd
