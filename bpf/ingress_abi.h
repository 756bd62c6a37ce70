/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map keys, values and constants of the ingress AF_XDP programs (bpf/ingress_xsk.bpf.c), shared
 * by bpf/ and src/ingress/xsk/. One definition only: C++ static_asserts the sizes and checks them
 * against the maps' info at load time. Every field is in host byte order unless its comment says
 * otherwise. */
#ifndef XDPFWD_INGRESS_ABI_H
#define XDPFWD_INGRESS_ABI_H

#include <linux/types.h>

#define XDPFWD_INGRESS_MAX_SERVICE_IPS 256 /* entries of local_service_ips */
#define XDPFWD_INGRESS_MAX_OVERLAY_IPS 16 /* entries of local_overlay_ips */
#define XDPFWD_INGRESS_MAX_STACK_PORTS 1024 /* entries of stack_tcp_ports */
#define XDPFWD_INGRESS_MAX_QUEUES 64 /* entries of client_xsks and overlay_xsks (key: rx queue) */
#define XDPFWD_INGRESS_MAX_IPV6_EXT 4 /* IPv6 extension headers walked before the transport */
/* skb->mark of the frames the tc programs hand to the inspector's AF_PACKET sockets ("xdpf"). */
#define XDPFWD_INGRESS_INSPECTOR_MARK 0x78647066

/* Key of local_service_ips and local_overlay_ips: the address in network byte order; an IPv4
 * address is stored IPv4-mapped (::ffff:a.b.c.d), as in the host program's services map. */
struct xdpfwd_ingress_ip_key {
	__u8 addr[16];
};

/* Value of local_service_ips, local_overlay_ips and stack_tcp_ports (whose key is a __u16 TCP
 * port in host byte order): presence is what counts. */
struct xdpfwd_ingress_flag {
	__u32 reserved; /* 0 */
};

/* The only entry (key 0) of the ARRAY overlay_config; the ingress may change it at run time.
 * While it is all zero, only ICMP errors towards a local overlay address and transit frames
 * are redirected. */
struct xdpfwd_ingress_overlay_config {
	__u16 nat_port_min; /* TCP/UDP destination ports (and ICMP echo ids) of NATed flows ... */
	__u16 nat_port_max; /* ... inclusive; min > max: no NAT range */
	__u8 mac[6]; /* ovl0's MAC: transit frames must be addressed to it; all zero: not checked */
	__u8 pad[2];
};

/* Per-CPU counters (the PERCPU_ARRAY "counters", XDPFWD_INGRESS_COUNTERS entries of __u64), one
 * per verdict of each program. New counters are only ever appended. */
enum xdpfwd_ingress_counter {
	/* xdpfwd_ingress_client (eth0) */
	XDPFWD_INGRESS_CLIENT_REDIRECTED = 0, /* to a service IP: into client_xsks */
	XDPFWD_INGRESS_CLIENT_NO_SOCKET, /* to a service IP, no socket on the rx queue: passed */
	XDPFWD_INGRESS_CLIENT_STACK_PORT, /* TCP to a stack_tcp_ports port of a service IP: passed */
	XDPFWD_INGRESS_CLIENT_NEIGHBOR, /* ICMPv6 router/neighbour discovery (133-137): passed */
	XDPFWD_INGRESS_CLIENT_OTHER, /* not to a service IP: ARP, other addresses, non-IP: passed */
	/* xdpfwd_ingress_overlay (ovl0) */
	XDPFWD_INGRESS_OVERLAY_REPLY, /* to a local overlay address, NAT range or ICMP error: redirected */
	XDPFWD_INGRESS_OVERLAY_TRANSIT, /* to a unicast address that is not local: redirected */
	XDPFWD_INGRESS_OVERLAY_NO_SOCKET, /* one of the two above, no socket on the rx queue: passed */
	XDPFWD_INGRESS_OVERLAY_LOCAL, /* to a local overlay address, not NAT (health checks): passed */
	XDPFWD_INGRESS_OVERLAY_OTHER, /* ARP, ND, multicast, link-local, other MAC, non-IP: passed */
	/* The tc programs of the AF_PACKET fallback: the inspector's frames, marked for its sockets */
	XDPFWD_INGRESS_CLIENT_PACKET_SOCKET, /* from eth0 (what client_redirected counts with AF_XDP) */
	XDPFWD_INGRESS_OVERLAY_PACKET_SOCKET, /* from ovl0 (overlay_reply and overlay_transit) */
	XDPFWD_INGRESS_COUNTERS,
};

#endif
