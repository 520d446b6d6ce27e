/* plugins/kubelet/volumes.c — a container's volumeMounts made into host
 * paths the runtime bind-mounts:
 *   emptyDir   POD_DIR/volumes/kubernetes.io~empty-dir/<name>; medium
 *              Memory is a tmpfs (sizeLimit its size), unmounted at teardown
 *   configMap  POD_DIR/volumes/kubernetes.io~configmap/<name>, one file per
 *   secret     key (or per `items` entry, at its path, with its mode;
 *              defaultMode otherwise, 0644); secret values base64-decoded;
 *              always read-only; refreshed each time a container is made
 *   hostPath   the path itself, after the `type` check (Directory,
 *              DirectoryOrCreate, File, FileOrCreate, Socket, CharDevice,
 *              BlockDevice)
 * readOnly and subPath from the volumeMount. A missing ConfigMap or Secret
 * (not optional) fails with Kubernetes' message; the container then waits
 * with CreateContainerConfigError. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kubelet.h"

#define EMPTY_DIR "kubernetes.io~empty-dir"
#define CONFIGMAP "kubernetes.io~configmap"
#define SECRET "kubernetes.io~secret"

/* A relative path with no ".." step: for items[].path and subPath. */
static bool rel_ok(const char *s)
{
	if (s[0] == '/' || !s[0])
		return false;
	for (const char *p = s; p; p = strchr(p, '/')) {
		if (*p == '/')
			p++;
		if (!strncmp(p, "..", 2) && (p[2] == '/' || p[2] == '\0'))
			return false;
	}
	return true;
}

static bool is_mountpoint(const char *dir)
{
	struct stat a, b;
	char *parent = kl_strf("%s/..", dir);
	bool r = parent && stat(dir, &a) == 0 && stat(parent, &b) == 0 &&
	    a.st_dev != b.st_dev;
	free(parent);
	return r;
}

static int empty_dir(const char *pod_dir, const char *name,
    const msgpack_object *src, char **path, char *err, size_t errlen)
{
	*path = kl_strf("%s/volumes/" EMPTY_DIR "/%s", pod_dir, name);
	if (*path == NULL)
		return KB_ENOMEM;
	if (kl_mkdirs(*path) != 0) {
		snprintf(err, errlen, "cannot make %s: %s", *path,
		    strerror(errno));
		return KB_ESYS;
	}
	chmod(*path, 0777); /* as the kubelet: any user in the pod writes */
	if (!kb_mp_streq(src, "medium", "Memory") || is_mountpoint(*path))
		return 0;
	char opts[64] = "mode=0777";
	const char *sl;
	size_t sll;
	int64_t size = 0;
	if (kb_mp_str(src, "sizeLimit", &sl, &sll) && sll < 40) {
		char q[48];
		snprintf(q, sizeof(q), "%.*s", (int)sll, sl);
		if (kb_conf_to_size(q, &size) == 0 && size > 0)
			snprintf(opts, sizeof(opts), "mode=0777,size=%lld",
			    (long long)size);
	}
	if (mount("tmpfs", *path, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) {
		snprintf(err, errlen, "cannot mount a tmpfs on %s: %s", *path,
		    strerror(errno));
		return KB_ESYS;
	}
	return 0;
}

static int write_key(const char *dir, const char *rel, const char *val,
    size_t len, int mode, char *err, size_t errlen)
{
	char *path = kl_strf("%s/%s", dir, rel);
	if (path == NULL)
		return KB_ENOMEM;
	char *slash = strrchr(path, '/');
	*slash = '\0';
	kl_mkdirs(path);
	*slash = '/';
	int rc = kl_write_file(path, val, len, mode);
	if (rc)
		snprintf(err, errlen, "cannot write %s: %s", path,
		    strerror(errno));
	free(path);
	return rc;
}

/* A ConfigMap or Secret as files. */
static int source_dir(struct kubelet *kl, struct kl_pod *p, const char *pod_dir,
    const char *vname, const msgpack_object *src, bool secret, char **path,
    char *err, size_t errlen)
{
	*path = kl_strf("%s/volumes/%s/%s", pod_dir,
	    secret ? SECRET : CONFIGMAP, vname);
	char *name = kb_mp_strdup(src, secret ? "secretName" : "name");
	bool optional = false;
	int64_t mode = 0644;
	kb_mp_bool(src, "optional", &optional);
	kb_mp_int(src, "defaultMode", &mode);
	kb_msg *m = NULL;
	int rc = 0;
	if (*path == NULL) {
		rc = KB_ENOMEM;
		goto out;
	}
	if (name == NULL) {
		snprintf(err, errlen, "volume %s: no %s", vname,
		    secret ? "secretName" : "name");
		rc = KB_EINVAL;
		goto out;
	}
	if (kl_mkdirs(*path) != 0) {
		snprintf(err, errlen, "cannot make %s", *path);
		rc = KB_ESYS;
		goto out;
	}
	rc = kl_get_source(kl, secret, p->ns, name, &m);
	if (rc == KB_ENOTFOUND && optional) {
		rc = 0;
		goto out;
	}
	if (rc) {
		if (rc == KB_ENOTFOUND)
			snprintf(err, errlen, "%s \"%s\" not found",
			    secret ? "secret" : "configmap", name);
		else
			snprintf(err, errlen, "cannot read %s %s/%s: %s",
			    secret ? "Secret" : "ConfigMap", p->ns, name,
			    kb_strerror(rc));
		goto out;
	}
	const msgpack_object *obj = kb_msg_body(m);
	const msgpack_object *items = kb_mp_get(src, "items");
	if (items && items->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; rc == 0 && i < items->via.array.size;
		     i++) {
			const msgpack_object *it = &items->via.array.ptr[i];
			char *key = kb_mp_strdup(it, "key");
			char *rel = kb_mp_strdup(it, "path");
			int64_t im = mode;
			kb_mp_int(it, "mode", &im);
			char *val = NULL;
			size_t vl = 0;
			if (key == NULL || rel == NULL || !rel_ok(rel)) {
				snprintf(err, errlen,
				    "volume %s: item %u needs a key and a relative path without ..",
				    vname, i);
				rc = KB_EINVAL;
			} else if (!kl_source_value(obj, secret, key, &val,
				       &vl)) {
				if (!optional) {
					snprintf(err, errlen,
					    "%s references non-existent %s key: %s",
					    secret ? "secret" : "configmap",
					    secret ? "secret" : "config", key);
					rc = KB_ENOTFOUND;
				}
			} else {
				rc = write_key(*path, rel, val, vl,
				    (int)(im & 07777), err, errlen);
			}
			free(val);
			free(key);
			free(rel);
		}
		goto out;
	}
	static const char *const maps[] = { "data", "binaryData" };
	for (int w = 0; w < (secret ? 1 : 2) && rc == 0; w++) {
		const msgpack_object *d = kb_mp_get(obj, maps[w]);
		for (uint32_t k = 0; rc == 0 && d &&
		     d->type == MSGPACK_OBJECT_MAP && k < d->via.map.size;
		     k++) {
			const msgpack_object *ko = &d->via.map.ptr[k].key;
			if (ko->type != MSGPACK_OBJECT_STR ||
			    ko->via.str.size > 250)
				continue;
			char key[256];
			snprintf(key, sizeof(key), "%.*s",
			    (int)ko->via.str.size, ko->via.str.ptr);
			char *val = NULL;
			size_t vl = 0;
			if (!rel_ok(key) || strchr(key, '/'))
				continue;
			if (kl_source_value(obj, secret, key, &val, &vl))
				rc = write_key(*path, key, val, vl,
				    (int)(mode & 07777), err, errlen);
			free(val);
		}
	}
out:
	kb_msg_free(m);
	free(name);
	return rc;
}

static int host_path(const msgpack_object *src, char **path, char *err,
    size_t errlen)
{
	*path = kb_mp_strdup(src, "path");
	if (*path == NULL || (*path)[0] != '/') {
		snprintf(err, errlen, "hostPath needs an absolute path");
		return KB_EINVAL;
	}
	char type[32] = "";
	const char *t;
	size_t tl;
	if (kb_mp_str(src, "type", &t, &tl) && tl < sizeof(type))
		snprintf(type, sizeof(type), "%.*s", (int)tl, t);
	struct stat st;
	bool exists = stat(*path, &st) == 0;
	if (!strcmp(type, "DirectoryOrCreate") && !exists) {
		if (kl_mkdirs(*path) != 0) {
			snprintf(err, errlen, "cannot create directory %s: %s",
			    *path, strerror(errno));
			return KB_ESYS;
		}
		return 0;
	}
	if (!strcmp(type, "FileOrCreate") && !exists) {
		int fd = open(*path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0) {
			snprintf(err, errlen, "cannot create file %s: %s",
			    *path, strerror(errno));
			return KB_ESYS;
		}
		close(fd);
		return 0;
	}
	const char *want = NULL;
	bool ok = true;
	if (!strcmp(type, "Directory") || !strcmp(type, "DirectoryOrCreate"))
		want = "a directory", ok = exists && S_ISDIR(st.st_mode);
	else if (!strcmp(type, "File") || !strcmp(type, "FileOrCreate"))
		want = "a file", ok = exists && S_ISREG(st.st_mode);
	else if (!strcmp(type, "Socket"))
		want = "a socket file", ok = exists && S_ISSOCK(st.st_mode);
	else if (!strcmp(type, "CharDevice"))
		want = "a character device", ok = exists && S_ISCHR(st.st_mode);
	else if (!strcmp(type, "BlockDevice"))
		want = "a block device", ok = exists && S_ISBLK(st.st_mode);
	else if (type[0]) {
		snprintf(err, errlen, "hostPath type %s is not supported",
		    type);
		return KB_EINVAL;
	}
	if (!ok) {
		snprintf(err, errlen,
		    "hostPath type check failed: %s is not %s", *path, want);
		return KB_EINVAL;
	}
	return 0;
}

static const msgpack_object *volume_named(const msgpack_object *pod,
    const char *name, size_t len)
{
	const msgpack_object *vs = kb_mp_get(pod, "spec.volumes");
	for (uint32_t i = 0;
	     vs && vs->type == MSGPACK_OBJECT_ARRAY && i < vs->via.array.size;
	     i++) {
		const char *n;
		size_t nl;
		if (kb_mp_str(&vs->via.array.ptr[i], "name", &n, &nl) &&
		    nl == len && !memcmp(n, name, len))
			return &vs->via.array.ptr[i];
	}
	return NULL;
}

static int add_mount(struct kl_ctr_config *cc, char *host, char *ctr, bool ro)
{
	struct kb_rt_mount *m =
	    realloc(cc->mounts, (cc->nmounts + 1) * sizeof(*m));
	char **s = realloc(cc->strs, (cc->nstrs + 2) * sizeof(char *));
	if (m)
		cc->mounts = m;
	if (s)
		cc->strs = s;
	if (m == NULL || s == NULL) {
		free(host);
		free(ctr);
		return KB_ENOMEM;
	}
	cc->strs[cc->nstrs++] = host;
	cc->strs[cc->nstrs++] = ctr;
	cc->mounts[cc->nmounts++] = (struct kb_rt_mount){ .host_path = host,
		.container_path = ctr,
		.read_only = ro };
	return 0;
}

int kl_volumes_mounts(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod, const msgpack_object *spec,
    struct kl_ctr_config *cc, char *err, size_t errlen)
{
	const msgpack_object *vm = kb_mp_get(spec, "volumeMounts");
	char *pod_dir = kl_pod_dir(kl, p->uid);
	int rc = pod_dir ? 0 : KB_ENOMEM;
	for (uint32_t i = 0; rc == 0 && vm &&
	     vm->type == MSGPACK_OBJECT_ARRAY && i < vm->via.array.size;
	     i++) {
		const msgpack_object *m = &vm->via.array.ptr[i];
		const char *vn;
		size_t vl;
		char *mpath = kb_mp_strdup(m, "mountPath");
		char *sub = kb_mp_strdup(m, "subPath");
		bool ro = false;
		kb_mp_bool(m, "readOnly", &ro);
		const msgpack_object *v = NULL;
		if (!kb_mp_str(m, "name", &vn, &vl) || mpath == NULL ||
		    mpath[0] != '/') {
			snprintf(err, errlen,
			    "volumeMounts[%u] needs a name and an absolute mountPath",
			    i);
			rc = KB_EINVAL;
		} else if ((v = volume_named(pod, vn, vl)) == NULL) {
			snprintf(err, errlen,
			    "volumeMount %.*s: no such volume in the pod",
			    (int)vl, vn);
			rc = KB_EINVAL;
		} else if (sub && sub[0] && !rel_ok(sub)) {
			snprintf(err, errlen,
			    "subPath %s must be relative without ..", sub);
			rc = KB_EINVAL;
		}
		char *host = NULL, name[256];
		snprintf(name, sizeof(name), "%.*s", (int)vl, vn);
		const msgpack_object *src = NULL;
		bool is_dir = true;
		if (rc) {
		} else if ((src = kb_mp_get(v, "emptyDir")) != NULL) {
			rc = empty_dir(pod_dir, name, src, &host, err, errlen);
		} else if ((src = kb_mp_get(v, "configMap")) != NULL) {
			rc = source_dir(kl, p, pod_dir, name, src, false, &host,
			    err, errlen);
			ro = true;
		} else if ((src = kb_mp_get(v, "secret")) != NULL) {
			rc = source_dir(kl, p, pod_dir, name, src, true, &host,
			    err, errlen);
			ro = true;
		} else if ((src = kb_mp_get(v, "hostPath")) != NULL) {
			rc = host_path(src, &host, err, errlen);
			struct stat st;
			is_dir = host && stat(host, &st) == 0 &&
			    S_ISDIR(st.st_mode);
		} else {
			snprintf(err, errlen,
			    "volume %s: only emptyDir, configMap, secret and hostPath are supported",
			    name);
			rc = KB_EINVAL;
		}
		if (rc == 0 && sub && sub[0]) {
			char *full = is_dir ? kl_strf("%s/%s", host, sub) :
					      NULL;
			if (full == NULL) {
				snprintf(err, errlen,
				    "subPath %s: volume %s is not a directory",
				    sub, name);
				rc = KB_EINVAL;
			} else {
				struct stat st;
				/* As the kubelet: a missing subPath is made. */
				if (stat(full, &st) != 0 &&
				    kl_mkdirs(full) != 0) {
					snprintf(err, errlen,
					    "cannot make subPath %s", full);
					rc = KB_ESYS;
				}
				free(host);
				host = full;
			}
		}
		if (rc == 0) {
			rc = add_mount(cc, host, mpath, ro);
			host = mpath = NULL;
		}
		free(host);
		free(mpath);
		free(sub);
	}
	free(pod_dir);
	return rc;
}

void kl_volumes_teardown(const char *pod_dir)
{
	char *dir = kl_strf("%s/volumes/" EMPTY_DIR, pod_dir);
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *path = kl_strf("%s/%s", dir, e->d_name);
		if (path)
			while (umount2(path, MNT_DETACH) == 0)
				;
		free(path);
	}
	if (d)
		closedir(d);
	free(dir);
}
