/* plugins/runtime-runc/cgroup.c — finding a process's cgroup directory on
 * v1, hybrid and v2 hosts (from /proc/PID/cgroup and the mount table, so
 * that a hierarchy mounted at a nested root still resolves), and removing a
 * pod's cgroup from every hierarchy. Shared with the shim. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "rr.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

bool rr_cgroup2_only(void)
{
	struct statfs s;
	return statfs("/sys/fs/cgroup", &s) == 0 &&
	    s.f_type == CGROUP2_SUPER_MAGIC;
}

/* A cgroup mount from /proc/self/mountinfo. */
struct cgmnt {
	char root[PATH_MAX];  /* the hierarchy path mounted */
	char point[PATH_MAX]; /* where */
	char opts[512];       /* super options: "rw,memory" */
	bool v2;
};

/* Call fn for each cgroup mount; stops when fn returns nonzero. */
static int each_mount(int (*fn)(const struct cgmnt *m, void *arg), void *arg)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	if (fp == NULL)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;
	while (rc == 0 && getline(&line, &cap, fp) > 0) {
		/* id parent maj:min root point opts [optional…] - type src super */
		char *sep = strstr(line, " - ");
		if (sep == NULL)
			continue;
		struct cgmnt m;
		char type[64], src[256];
		if (sscanf(sep + 3, "%63s %255s %511s", type, src, m.opts) != 3)
			continue;
		m.v2 = !strcmp(type, "cgroup2");
		if (!m.v2 && strcmp(type, "cgroup"))
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", m.root,
			m.point) != 2)
			continue;
		rc = fn(&m, arg);
	}
	free(line);
	fclose(fp);
	return rc;
}

static bool has_opt(const char *opts, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = opts; p && *p;) {
		if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

struct mdir {
	const char *controller; /* "" for v2 */
	const char *rel;
	char *out;
	size_t len;
	bool found;
};

static int mount_dir(const struct cgmnt *m, void *arg)
{
	struct mdir *d = arg;
	if (*d->controller == '\0' ?
		!m->v2 :
		(m->v2 || !has_opt(m->opts, d->controller)))
		return 0;
	const char *rel = d->rel;
	size_t rl = strlen(m->root);
	if (strcmp(m->root, "/")) {
		if (strncmp(rel, m->root, rl) || (rel[rl] && rel[rl] != '/'))
			return 0;
		rel += rl;
	}
	snprintf(d->out, d->len, "%s%s", m->point, rel);
	d->found = true;
	return 1;
}

int rr_cgroup_mount_dir(const char *controller, const char *rel, char *out,
    size_t len)
{
	struct mdir d = { controller, rel, out, len, false };
	each_mount(mount_dir, &d);
	return d.found ? 0 : -1;
}

int rr_cgroup_dir(pid_t pid, const char *controller, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	FILE *fp = fopen(path, "re");
	if (fp == NULL)
		return -1;
	char *line = NULL, cg[PATH_MAX] = "";
	size_t cap = 0;
	bool v2only = rr_cgroup2_only();
	while (getline(&line, &cap, fp) > 0) {
		line[strcspn(line, "\n")] = '\0';
		/* hierarchy-id:controllers:path */
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL)
			continue;
		*c2 = '\0';
		const char *ctrls = c1 + 1;
		bool match = *controller == '\0' || v2only ?
		    *ctrls == '\0' :
		    has_opt(ctrls, controller);
		if (match) {
			snprintf(cg, sizeof(cg), "%s", c2 + 1);
			break;
		}
	}
	free(line);
	fclose(fp);
	if (*cg == '\0')
		return -1;
	return rr_cgroup_mount_dir(v2only ? "" : controller, cg, out, len);
}

static int rmdir_in(const struct cgmnt *m, void *arg)
{
	const char *rel = arg;
	if (strcmp(m->root, "/"))
		return 0; /* a nested mount: runc made nothing under it */
	char dir[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%s%s", m->point, rel) >=
	    (int)sizeof(dir))
		return 0;
	/* Only empty cgroups go (rmdir refuses others): a process still in
	 * one keeps it, and the next sandbox_remove retries. */
	rmdir(dir);
	return 0;
}

void rr_cgroup_rmdir_all(const char *rel)
{
	each_mount(rmdir_in, (void *)rel);
}
