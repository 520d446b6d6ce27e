/* plugins/kubelet/netns.c — a pod's network namespace, named as `ip netns`
 * names them: an nsfs bind mount at /run/netns/kubus-<short uid>.
 *
 * Made in C, as iproute2 does, not by running `ip`: a short-lived thread
 * unshares its network namespace (allowed for one thread of a threaded
 * process) and bind-mounts /proc/thread-self/ns/net onto the file, so the
 * namespace outlives the thread. /run/netns is made a shared mount first
 * (again as iproute2 does), so runc and other mount namespaces see it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "kubelet.h"

#define NETNS_DIR "/run/netns"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

void kl_netns_path(const char *uid, char *buf, size_t len)
{
	/* 12 hex digits of the uid: unique enough on one node, and short. */
	char s[16];
	size_t n = 0;
	for (const char *u = uid; *u && n < 12; u++)
		if (*u != '-')
			s[n++] = *u;
	s[n] = '\0';
	snprintf(buf, len, NETNS_DIR "/kubus-%s", s);
}

bool kl_netns_is_ns(const char *path)
{
	struct statfs fs;
	return statfs(path, &fs) == 0 && (unsigned long)fs.f_type == NSFS_MAGIC;
}

/* /run/netns shared, as `ip netns add` leaves it. */
static int netns_dir(char *err, size_t errlen)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	static bool done;
	int rc = 0;
	pthread_mutex_lock(&once);
	if (done)
		goto out;
	if (kl_mkdirs(NETNS_DIR) != 0) {
		snprintf(err, errlen, "mkdir %s: %s", NETNS_DIR,
		    strerror(errno));
		rc = KB_ESYS;
		goto out;
	}
	if (mount("", NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) != 0) {
		if (errno != EINVAL ||
		    mount(NETNS_DIR, NETNS_DIR, "none", MS_BIND | MS_REC,
			NULL) != 0 ||
		    mount("", NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) !=
			0) {
			snprintf(err, errlen,
			    "cannot make %s a shared mount: %s", NETNS_DIR,
			    strerror(errno));
			rc = KB_ESYS;
			goto out;
		}
	}
	done = true;
out:
	pthread_mutex_unlock(&once);
	return rc;
}

struct mk {
	const char *path;
	int err;
	const char *what;
};

static void *make_ns(void *arg)
{
	struct mk *m = arg;
	if (unshare(CLONE_NEWNET) != 0) {
		m->err = errno;
		m->what = "unshare(CLONE_NEWNET)";
		return NULL;
	}
	if (mount("/proc/thread-self/ns/net", m->path, "none", MS_BIND, NULL) !=
	    0) {
		m->err = errno;
		m->what = "bind mount";
	}
	return NULL;
}

int kl_netns_create(const char *path, char *err, size_t errlen)
{
	int rc = netns_dir(err, errlen);
	if (rc)
		return rc;
	if (kl_netns_is_ns(path))
		return 0; /* made before a restart: keep it */
	int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "create %s: %s", path, strerror(errno));
		return KB_ESYS;
	}
	close(fd);
	struct mk m = { .path = path };
	pthread_t t;
	if (pthread_create(&t, NULL, make_ns, &m) != 0) {
		snprintf(err, errlen, "cannot start a thread");
		unlink(path);
		return KB_ESYS;
	}
	pthread_join(t, NULL);
	if (m.err) {
		snprintf(err, errlen, "netns %s: %s: %s", path, m.what,
		    strerror(m.err));
		unlink(path);
		return KB_ESYS;
	}
	return 0;
}

int kl_netns_remove(const char *path)
{
	/* MNT_DETACH: a process still inside keeps the namespace alive, the
	 * name goes anyway (as `ip netns del`). */
	while (umount2(path, MNT_DETACH) == 0)
		;
	if (unlink(path) != 0 && errno != ENOENT)
		return KB_ESYS;
	return 0;
}
