/* plugins/runtime-runc/netns.c — a pod network namespace of our own, for
 * a sandbox the kubelet gave none (no CNI, not hostNetwork): so that the
 * pod's containers still share one localhost. Made as `ip netns add` does:
 * a child unshares a new namespace and bind-mounts it onto a file. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rr.h"

int rr_netns_make(const char *path)
{
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0)
		return KB_ESYS;
	close(fd);
	/* A child, so that this (threaded) process keeps its namespace; it
	 * makes only system calls before _exit. */
	pid_t pid = fork();
	if (pid < 0) {
		unlink(path);
		return KB_ESYS;
	}
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) != 0)
			_exit(1);
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		memcpy(ifr.ifr_name, "lo", 3);
		if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
			_exit(2);
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
			_exit(3);
		if (mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) != 0)
			_exit(4);
		_exit(0);
	}
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		unlink(path);
		errno = EPERM;
		return KB_ESYS;
	}
	return 0;
}

void rr_netns_remove(const char *path)
{
	umount2(path, MNT_DETACH);
	unlink(path);
}
