/* plugins/runtime-runc/spec.c — the OCI runtime spec (config.json) of a
 * container, from the image config and the pod's container as Kubernetes
 * defines: `command` replaces the image's Entrypoint and drops its Cmd,
 * `args` replaces Cmd; env from the kubelet overrides the image's;
 * workingDir overrides WorkingDir; securityContext.runAsUser/runAsGroup
 * override User. Docker's default capabilities, runc's default masked and
 * read-only paths, no new privileges. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <kubus/mp.h>

#include "rr.h"

static const char *const default_caps[] = {
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
	NULL,
};

static const char *const masked_paths[] = {
	"/proc/acpi",
	"/proc/asound",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/sys/firmware",
	"/proc/scsi",
	NULL,
};

static const char *const readonly_paths[] = {
	"/proc/bus",
	"/proc/fs",
	"/proc/irq",
	"/proc/sys",
	"/proc/sysrq-trigger",
	NULL,
};

static void extend_new(json_t *a, json_t *b)
{
	json_array_extend(a, b);
	json_decref(b);
}

static json_t *strv_json(const char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* A msgpack array of strings appended to a; false when it is something
 * else. Absent (NULL) appends nothing and is true. */
static bool mp_strs(json_t *a, const msgpack_object *o, const char *what,
    char *err, size_t errlen)
{
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return true;
	if (o->type != MSGPACK_OBJECT_ARRAY) {
		snprintf(err, errlen, "%s must be a list of strings", what);
		return false;
	}
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *e = &o->via.array.ptr[i];
		if (e->type != MSGPACK_OBJECT_STR) {
			snprintf(err, errlen, "%s[%u] must be a string", what,
			    i);
			return false;
		}
		json_array_append_new(a,
		    json_stringn(e->via.str.ptr, e->via.str.size));
	}
	return true;
}

static bool present(const msgpack_object *o)
{
	return o != NULL && o->type != MSGPACK_OBJECT_NIL;
}

/* Add or replace "NAME=…" in env (a JSON array). */
static void env_set(json_t *env, const char *kv)
{
	size_t n = strcspn(kv, "=");
	size_t i;
	json_t *v;
	json_array_foreach(env, i, v) {
		const char *s = json_string_value(v);
		if (s && !strncmp(s, kv, n) && s[n] == '=') {
			json_array_set_new(env, i, json_string(kv));
			return;
		}
	}
	json_array_append_new(env, json_string(kv));
}

static void add_unique(json_t *a, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		if (!strcmp(json_string_value(v), s))
			return;
	}
	json_array_append_new(a, json_string(s));
}

/* Look a name up in ROOTFS/etc/passwd or /etc/group: field 3 (the id),
 * and for passwd field 4 (the primary gid) into *gid. */
static int lookup_id(const char *rootfs, const char *file, const char *name,
    long *id, long *gid)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/etc/%s", rootfs, file);
	FILE *fp = fopen(path, "re");
	if (fp == NULL)
		return -1;
	char line[1024];
	int rc = -1;
	while (fgets(line, sizeof(line), fp)) {
		char *f[5] = { 0 };
		char *save = NULL, *p = line;
		/* name:x:id:gid:… (empty fields are not skipped: strsep) */
		for (int i = 0; i < 5 && p; i++)
			f[i] = strsep(&p, ":");
		(void)save;
		if (f[0] && f[2] && !strcmp(f[0], name)) {
			*id = strtol(f[2], NULL, 10);
			if (gid && f[3])
				*gid = strtol(f[3], NULL, 10);
			rc = 0;
			break;
		}
	}
	fclose(fp);
	return rc;
}

static bool all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* uid and gid from the image's User ("name", "uid", "uid:gid", "name:group")
 * then securityContext.runAsUser / runAsGroup. */
static int resolve_user(const struct rr_image *img, const msgpack_object *c,
    long *uid, long *gid, char *err, size_t errlen)
{
	*uid = 0;
	*gid = 0;
	if (img->user && *img->user) {
		char u[256];
		snprintf(u, sizeof(u), "%s", img->user);
		char *g = strchr(u, ':');
		if (g)
			*g++ = '\0';
		long pgid = 0;
		if (all_digits(u))
			*uid = strtol(u, NULL, 10);
		else if (lookup_id(img->rootfs, "passwd", u, uid, &pgid)) {
			snprintf(err, errlen,
			    "user %s of the image is not in "
			    "its /etc/passwd",
			    u);
			return KB_EINVAL;
		}
		*gid = pgid;
		if (g && all_digits(g))
			*gid = strtol(g, NULL, 10);
		else if (g && lookup_id(img->rootfs, "group", g, gid, NULL)) {
			snprintf(err, errlen,
			    "group %s of the image is not in "
			    "its /etc/group",
			    g);
			return KB_EINVAL;
		}
	}
	int64_t v;
	if (c && kb_mp_int(c, "securityContext.runAsUser", &v)) {
		if (v < 0 || v > 0x7fffffff) {
			snprintf(err, errlen, "runAsUser %lld out of range",
			    (long long)v);
			return KB_EINVAL;
		}
		*uid = (long)v;
	}
	if (c && kb_mp_int(c, "securityContext.runAsGroup", &v)) {
		if (v < 0 || v > 0x7fffffff) {
			snprintf(err, errlen, "runAsGroup %lld out of range",
			    (long long)v);
			return KB_EINVAL;
		}
		*gid = (long)v;
	}
	return 0;
}

static bool in_list(const msgpack_object *l, const char *cap)
{
	if (l == NULL || l->type != MSGPACK_OBJECT_ARRAY)
		return false;
	for (uint32_t i = 0; i < l->via.array.size; i++) {
		const msgpack_object *e = &l->via.array.ptr[i];
		if (e->type != MSGPACK_OBJECT_STR)
			continue;
		const char *s = e->via.str.ptr;
		size_t n = e->via.str.size;
		if (n == 3 && !strncasecmp(s, "ALL", 3))
			return true;
		const char *name = cap + 4; /* past "CAP_" */
		if (n >= 4 && !strncasecmp(s, "CAP_", 4)) {
			s += 4;
			n -= 4;
		}
		if (strlen(name) == n && !strncasecmp(s, name, n))
			return true;
	}
	return false;
}

static json_t *capabilities(const msgpack_object *c, char *err, size_t errlen)
{
	const msgpack_object *add =
	    c ? kb_mp_get(c, "securityContext.capabilities.add") : NULL;
	const msgpack_object *drop =
	    c ? kb_mp_get(c, "securityContext.capabilities.drop") : NULL;
	json_t *set = json_array();
	for (size_t i = 0; default_caps[i]; i++)
		if (!in_list(drop, default_caps[i]))
			json_array_append_new(set,
			    json_string(default_caps[i]));
	if (add && add->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < add->via.array.size; i++) {
			const msgpack_object *e = &add->via.array.ptr[i];
			if (e->type != MSGPACK_OBJECT_STR ||
			    e->via.str.size == 0 || e->via.str.size > 40) {
				snprintf(err, errlen,
				    "capabilities.add[%u] is "
				    "not a capability name",
				    i);
				json_decref(set);
				return NULL;
			}
			char name[64];
			const char *s = e->via.str.ptr;
			int n = (int)e->via.str.size;
			if (n >= 4 && !strncasecmp(s, "CAP_", 4)) {
				s += 4;
				n -= 4;
			}
			snprintf(name, sizeof(name), "CAP_%.*s", n, s);
			for (char *p = name; *p; p++)
				if (*p >= 'a' && *p <= 'z')
					*p -= 'a' - 'A';
			if (!strcmp(name, "CAP_ALL")) {
				snprintf(err, errlen,
				    "capabilities.add: ALL "
				    "is not supported by runtime-runc");
				json_decref(set);
				return NULL;
			}
			add_unique(set, name);
		}
	}
	json_t *caps = json_pack("{s:O, s:O, s:O}", "bounding", set,
	    "effective", set, "permitted", set);
	json_decref(set);
	return caps;
}

static json_t *mount(const char *dst, const char *type, const char *src,
    const char *const *opts)
{
	return json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type",
	    type, "source", src, "options", strv_json(opts));
}

static json_t *mounts(const struct kb_rt_container_spec *cs,
    const struct rr_sandbox *sb, char *err, size_t errlen)
{
	json_t *m = json_array();
	json_array_append_new(m,
	    mount("/proc", "proc", "proc",
		(const char *const[]){ "nosuid", "noexec", "nodev", NULL }));
	json_array_append_new(m,
	    mount("/dev", "tmpfs", "tmpfs",
		(const char *const[]){ "nosuid", "strictatime", "mode=755",
		    "size=65536k", NULL }));
	json_array_append_new(m,
	    mount("/dev/pts", "devpts", "devpts",
		(const char *const[]){ "nosuid", "noexec", "newinstance",
		    "ptmxmode=0666", "mode=0620", "gid=5", NULL }));
	json_array_append_new(m,
	    mount("/dev/shm", "tmpfs", "shm",
		(const char *const[]){ "nosuid", "noexec", "nodev", "mode=1777",
		    "size=65536k", NULL }));
	json_array_append_new(m,
	    mount("/dev/mqueue", "mqueue", "mqueue",
		(const char *const[]){ "nosuid", "noexec", "nodev", NULL }));
	json_array_append_new(m,
	    mount("/sys", "sysfs", "sysfs",
		(const char *const[]){ "nosuid", "noexec", "nodev", "ro",
		    NULL }));
	json_array_append_new(m,
	    mount("/sys/fs/cgroup", "cgroup", "cgroup",
		(const char *const[]){ "nosuid", "noexec", "nodev", "relatime",
		    "ro", NULL }));
	(void)sb;
	for (size_t i = 0; i < cs->nmounts; i++) {
		const struct kb_rt_mount *u = &cs->mounts[i];
		if (u->host_path == NULL || u->container_path == NULL ||
		    u->host_path[0] != '/' || u->container_path[0] != '/') {
			snprintf(err, errlen,
			    "mount %zu: host and container "
			    "paths must be absolute",
			    i);
			json_decref(m);
			return NULL;
		}
		const char *ro[] = { "rbind", "rprivate", "ro", NULL };
		const char *rw[] = { "rbind", "rprivate", NULL };
		json_array_append_new(m,
		    mount(u->container_path, "bind", u->host_path,
			u->read_only ? ro : rw));
	}
	return m;
}

static json_t *resources(const struct kb_rt_container_spec *cs)
{
	json_t *res = json_pack("{s:[{s:b, s:s}]}", "devices", "allow", 0,
	    "access", "rwm");
	int64_t req = cs->cpu_request_milli, lim = cs->cpu_limit_milli;
	if (req <= 0)
		req = lim; /* Kubernetes: the request defaults to the limit */
	/* Kubernetes' milli-CPU to shares: 1000m = 1024, at least 2. */
	int64_t shares = req > 0 ? req * 1024 / 1000 : 2;
	if (shares < 2)
		shares = 2;
	json_t *cpu = json_pack("{s:I}", "shares", (json_int_t)shares);
	if (lim > 0) {
		int64_t period = 100000, quota = lim * period / 1000;
		if (quota < 1000)
			quota = 1000;
		json_object_set_new(cpu, "quota", json_integer(quota));
		json_object_set_new(cpu, "period", json_integer(period));
	}
	json_object_set_new(res, "cpu", cpu);
	if (cs->memory_limit_bytes > 0)
		json_object_set_new(res, "memory",
		    json_pack("{s:I}", "limit",
			(json_int_t)cs->memory_limit_bytes));
	return res;
}

char *rr_spec_build(struct rr *r, const struct kb_rt_container_spec *cs,
    const struct rr_sandbox *sb, const struct rr_image *img, const char *id,
    char *err, size_t errlen)
{
	const msgpack_object *c = KB_RT_HAS(cs, container) ? cs->container :
							     NULL;
	json_t *root = NULL;
	/* argv */
	json_t *args = json_array();
	const msgpack_object *command = c ? kb_mp_get(c, "command") : NULL;
	const msgpack_object *cargs = c ? kb_mp_get(c, "args") : NULL;
	if (present(command)) {
		if (!mp_strs(args, command, "command", err, errlen))
			goto out_args;
	} else {
		extend_new(args,
		    strv_json((const char *const *)img->entrypoint));
	}
	if (present(cargs)) {
		if (!mp_strs(args, cargs, "args", err, errlen))
			goto out_args;
	} else if (!present(command)) {
		extend_new(args, strv_json((const char *const *)img->cmd));
	}
	if (json_array_size(args) == 0) {
		snprintf(err, errlen,
		    "container %s has no command: neither "
		    "the pod nor image %s gives one",
		    cs->name, cs->image);
		goto out_args;
	}
	/* env: defaults, the image's, then the kubelet's */
	json_t *env = json_array();
	char kv[KB_RT_ID_MAX + 16];
	env_set(env,
	    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
	    "/usr/bin:/sbin:/bin");
	snprintf(kv, sizeof(kv), "HOSTNAME=%s", sb->hostname);
	env_set(env, kv);
	for (size_t i = 0; img->env && img->env[i]; i++)
		if (strchr(img->env[i], '='))
			env_set(env, img->env[i]);
	for (size_t i = 0; cs->env && cs->env[i]; i++) {
		if (strchr(cs->env[i], '=') == NULL || cs->env[i][0] == '=') {
			snprintf(err, errlen,
			    "env entry \"%s\" is not "
			    "NAME=value",
			    cs->env[i]);
			json_decref(env);
			goto out_args;
		}
		env_set(env, cs->env[i]);
	}
	/* cwd, user, capabilities */
	char *wd = c ? kb_mp_strdup(c, "workingDir") : NULL;
	const char *cwd = wd && *wd               ? wd :
	    img->working_dir && *img->working_dir ? img->working_dir :
						    "/";
	if (cwd[0] != '/') {
		snprintf(err, errlen, "workingDir %s is not absolute", cwd);
		free(wd);
		json_decref(env);
		goto out_args;
	}
	long uid, gid;
	bool priv = false, ro_root = false, ape = false;
	if (c) {
		kb_mp_bool(c, "securityContext.privileged", &priv);
		kb_mp_bool(c, "securityContext.readOnlyRootFilesystem",
		    &ro_root);
		kb_mp_bool(c, "securityContext.allowPrivilegeEscalation", &ape);
	}
	json_t *caps = NULL;
	if (priv) {
		snprintf(err, errlen,
		    "privileged containers are not supported "
		    "by runtime-runc");
	} else if (resolve_user(img, c, &uid, &gid, err, errlen) == 0) {
		caps = capabilities(c, err, errlen);
	}
	if (caps == NULL) {
		free(wd);
		json_decref(env);
		goto out_args;
	}
	json_t *process =
	    json_pack("{s:b, s:{s:I, s:I}, s:o, s:o, s:s, s:o, s:b}",
		"terminal", 0, "user", "uid", (json_int_t)uid, "gid",
		(json_int_t)gid, "args", args, "env", env, "cwd", cwd,
		"capabilities", caps, "noNewPrivileges", !ape);
	free(wd);
	if (process == NULL) {
		snprintf(err, errlen, "cannot build the process spec");
		return NULL;
	}
	json_t *mnts = mounts(cs, sb, err, errlen);
	if (mnts == NULL) {
		json_decref(process);
		return NULL;
	}
	/* namespaces: the pod's network namespace, the rest private */
	/* hostNetwork pods share the host's UTS namespace too, as in
	 * Kubernetes: no hostname of their own. */
	json_t *nss = json_pack("[{s:s}, {s:s}, {s:s}]", "type", "pid", "type",
	    "ipc", "type", "mount");
	if (!sb->host_network)
		json_array_append_new(nss, json_pack("{s:s}", "type", "uts"));
	if (*sb->netns)
		json_array_append_new(nss,
		    json_pack("{s:s, s:s}", "type", "network", "path",
			sb->netns));
	else if (!sb->host_network)
		json_array_append_new(nss,
		    json_pack("{s:s}", "type", "network"));
	if (r->cgroup2)
		json_array_append_new(nss,
		    json_pack("{s:s}", "type", "cgroup"));
	char cgpath[KB_RT_PATH_MAX];
	snprintf(cgpath, sizeof(cgpath), "%s/%s/%s", r->cgroup_parent,
	    cs->pod_uid && *cs->pod_uid ? cs->pod_uid : sb->uid, id);
	root = json_pack("{s:s, s:o, s:{s:s, s:b}, s:o, "
			 "s:{s:o, s:o, s:s, s:o, s:o}, s:{s:s, s:s, s:s, s:s}}",
	    "ociVersion", "1.0.2", "process", process, "root", "path", "rootfs",
	    "readonly", ro_root, "mounts", mnts, "linux", "namespaces", nss,
	    "resources", resources(cs), "cgroupsPath", cgpath, "maskedPaths",
	    strv_json(masked_paths), "readonlyPaths", strv_json(readonly_paths),
	    "annotations", "io.kubernetes.pod.namespace", sb->ns,
	    "io.kubernetes.pod.name", sb->name, "io.kubernetes.pod.uid",
	    sb->uid, "io.kubernetes.container.name", cs->name);
	if (root == NULL) {
		snprintf(err, errlen, "cannot build the runtime spec");
		return NULL;
	}
	if (!sb->host_network)
		json_object_set_new(root, "hostname",
		    json_string(sb->hostname));
	char *text = json_dumps(root, JSON_INDENT(1));
	json_decref(root);
	return text;
out_args:
	json_decref(args);
	return NULL;
}
