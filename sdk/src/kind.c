/* sdk/src/kind.c — plugin kind names. */
#include <string.h>

#include <kubus/plugin.h>

static const char *const kinds[KB_KIND_MAX_] = {
	[KB_KIND_NONE] = NULL,
	[KB_KIND_STORE] = "store",
	[KB_KIND_FRONTEND] = "frontend",
	[KB_KIND_CONTROLLER] = "controller",
	[KB_KIND_SCHEDULER] = "scheduler",
	[KB_KIND_SCHED_POLICY] = "sched-policy",
	[KB_KIND_NODE] = "node",
	[KB_KIND_RUNTIME] = "runtime",
	[KB_KIND_PROXY] = "proxy",
	[KB_KIND_PROXY_BACKEND] = "proxy-backend",
	[KB_KIND_DNS] = "dns",
	[KB_KIND_SERVICE] = "service",
};

const char *kb_kind_name(int kind)
{
	if (kind <= KB_KIND_NONE || kind >= KB_KIND_MAX_)
		return NULL;
	return kinds[kind];
}

int kb_kind_from_name(const char *name)
{
	for (int k = KB_KIND_NONE + 1; name && k < KB_KIND_MAX_; k++)
		if (strcmp(kinds[k], name) == 0)
			return k;
	return KB_KIND_NONE;
}

int kb_kind_is_extension(int kind)
{
	return kind == KB_KIND_SCHED_POLICY || kind == KB_KIND_RUNTIME ||
	    kind == KB_KIND_PROXY_BACKEND;
}
