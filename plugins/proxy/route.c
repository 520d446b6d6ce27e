/* plugins/proxy/route.c — keep the service CIDR on this machine.
 *
 * The CIDR is routed to a device of the proxy's own, `kubus-px0`: a
 * dummy, or where the kernel has no dummy driver (containers without
 * modules) one end of a veth pair whose other end stays down, which drops
 * what it is given just the same:
 * a packet to a ClusterIP that no rule has DNAT'd yet goes into the dummy
 * and is dropped there, never out of a real interface. An `unreachable` or
 * `blackhole` route would do that too but breaks local clients: for a
 * locally generated packet the route lookup happens at connect(), before
 * the output hook where the backend DNATs, so connect() would fail with
 * EHOSTUNREACH/EINVAL. With a unicast route to the dummy, the output hook
 * sees the packet, DNATs it and the kernel routes it again to the
 * endpoint. The backends reject what is left (unallocated ClusterIPs,
 * ports without endpoints) before it reaches the dummy. */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy.h"

extern char **environ;

int px_run(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define PX_DEV "kubus-px0"

int px_route_setup(struct proxy *px)
{
	char *add[] = { "ip", "link", "add", PX_DEV, "type", "dummy", NULL };
	char *addv[] = { "ip", "link", "add", PX_DEV, "type", "veth", "peer",
		"name", PX_DEV "p", NULL };
	char *show[] = { "ip", "link", "show", PX_DEV, NULL };
	char *up[] = { "ip", "link", "set", PX_DEV, "up", NULL };
	/* metric 1000: a backend may put a route of its own before it
	 * (proxy-userspace's `unreachable`, as it has no netfilter rejects) */
	char *rt[] = { "ip", "route", "replace", px->cfg.service_cidr, "dev",
		PX_DEV, "metric", "1000", NULL, NULL, NULL };
	if (px->cfg.node_ip) {
		rt[8] = "src";
		rt[9] = px->cfg.node_ip;
	}
	if (px_run(show) != 0 && px_run(add) != 0 && px_run(addv) != 0)
		return kb_fail(px->ctx, KB_ESYS,
		    "cannot make the device %s (dummy or veth): is `ip` installed, and are we root?",
		    PX_DEV);
	if (px_run(up) != 0)
		return kb_fail(px->ctx, KB_ESYS, "cannot bring up %s", PX_DEV);
	if (px_run(rt) != 0) {
		/* `src` needs the address to be local; retry without it */
		rt[8] = NULL;
		if (px_run(rt) != 0)
			return kb_fail(px->ctx, KB_ESYS,
			    "cannot route the service CIDR %s to %s",
			    px->cfg.service_cidr, PX_DEV);
	}
	return 0;
}
