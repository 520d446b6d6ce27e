/* tests/scheduler/sched_host.h — the group fixture of the scheduler tests
 * that build a framework on their own (config.c, columns.c, eqcache.c): a
 * host with store-lmdb only, and a plugin endpoint `ctx` on it, for the
 * scheduler's config loader (policies and their init take a ctx). Include
 * after <cmocka.h> and harness.h. */
#ifndef SCHED_HOST_H
#define SCHED_HOST_H

#include <stdio.h>

static struct kbt_host *host;
static kb_ctx *ctx;

static int setup(void **state)
{
	char err[512];
	(void)state;
	host = kbt_host_start("host:\n  name: t\n  log_level: error\n"
			      "plugins:\n  - {name: store, use: store-lmdb}\n",
	    err, sizeof(err));
	if (host == NULL) {
		fprintf(stderr, "host: %s\n", err);
		return -1;
	}
	static const char *const groups[] = { "kubus:plugins" };
	ctx = kbt_client(host, "t", "plugin:t", groups, 1);
	return ctx ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	kbt_host_stop(host);
	return 0;
}

#endif
