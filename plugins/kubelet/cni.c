/* plugins/kubelet/cni.c — pod networking through CNI 1.0 plugins.
 *
 * The kubelet writes one network configuration list from its config
 * (loopback, then bridge with host-local IPAM on the pod CIDR, IPAM state
 * under the kubelet's data dir) and runs its plugins as the CNI spec says:
 * each plugin binary from cni_bin_dir, with CNI_COMMAND, CNI_CONTAINERID
 * (the pod uid), CNI_NETNS, CNI_IFNAME=eth0 and CNI_PATH in its
 * environment and its network config, with the previous plugin's result
 * as prevResult, on stdin; ADD in order, DEL in reverse. The list used at
 * ADD and the final result are kept in the pod dir, so DEL (after a
 * kubelet restart too) hands the plugins what ADD did. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "kubelet.h"

#define CNI_VERSION "1.0.0"
#define NET_NAME "kubus"
#define PLUGIN_TIMEOUT_MS 30000
#define OUT_MAX (1 << 20)

extern char **environ;

char *kl_pod_dir(struct kubelet *kl, const char *uid)
{
	return kl_cat(kl->root, "/pods/", uid, (char *)NULL);
}

/* The conflist for the current pod CIDR. */
static json_t *conflist(struct kubelet *kl, const char *cidr)
{
	char *data;
	if (asprintf(&data, "%s/cni/networks", kl->root) < 0)
		return NULL;
	json_t *l = json_pack(
	    "{s:s, s:s, s:[{s:s}, {s:s, s:s, s:b, s:b, s:b, s:{s:s, s:[[{s:s}]], s:[{s:s}], s:s}}]}",
	    "cniVersion", CNI_VERSION, "name", NET_NAME, "plugins", "type",
	    "loopback", "type", "bridge", "bridge", kl->cfg.bridge, "isGateway",
	    1, "ipMasq", 0, "hairpinMode", 1, "ipam", "type", "host-local",
	    "ranges", "subnet", cidr, "routes", "dst",
	    strchr(cidr, ':') ? "::/0" : "0.0.0.0/0", "dataDir", data);
	free(data);
	return l;
}

static int64_t mono_ms(void)
{
	return kl_mono_ms();
}

/* Run one plugin: stdin in, stdout into *out (malloc'd). The exit status
 * into *status (-1 when killed on timeout). */
static int exec_plugin(struct kubelet *kl, const char *type,
    const char *const *env, const char *in, char **out, int *status, char *err,
    size_t errlen)
{
	char *path;
	*out = NULL;
	if (strchr(type, '/') || strstr(type, "..")) {
		snprintf(err, errlen, "bad CNI plugin type \"%s\"", type);
		return KB_EINVAL;
	}
	if (asprintf(&path, "%s/%s", kl->cfg.cni_bin_dir, type) < 0)
		return KB_ENOMEM;
	if (access(path, X_OK) != 0) {
		snprintf(err, errlen, "CNI plugin %s: %s", path,
		    strerror(errno));
		free(path);
		return KB_ENOENT;
	}
	int pin[2], pout[2];
	if (pipe2(pin, O_CLOEXEC) != 0) {
		free(path);
		return KB_ESYS;
	}
	if (pipe2(pout, O_CLOEXEC) != 0) {
		close(pin[0]);
		close(pin[1]);
		free(path);
		return KB_ESYS;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	/* Nothing else of the kubelet's (sockets, files) goes along. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_t sa;
	posix_spawnattr_init(&sa);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&sa, &none);
	posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK);
	char *argv[] = { (char *)type, NULL };
	pid_t pid;
	int e = posix_spawn(&pid, path, &fa, &sa, argv, (char *const *)env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&sa);
	close(pin[0]);
	close(pout[1]);
	free(path);
	if (e != 0) {
		close(pin[1]);
		close(pout[0]);
		snprintf(err, errlen, "cannot run CNI plugin %s: %s", type,
		    strerror(e));
		return KB_ESYS;
	}
	/* Feed stdin and drain stdout together, under a deadline. */
	size_t inlen = strlen(in), inoff = 0, cap = 4096, len = 0;
	char *buf = malloc(cap);
	int64_t end = mono_ms() + PLUGIN_TIMEOUT_MS;
	bool timed_out = false;
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	int wfd = pin[1];
	/* A plugin that exits before reading its stdin must not kill us
	 * with SIGPIPE (a host that does not ignore it): block it on this
	 * thread and drop one that came, below. */
	sigset_t pipe_set, old_set;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	while (buf) {
		struct pollfd fds[2] = { { pout[0], POLLIN, 0 },
			{ wfd, POLLOUT, 0 } };
		int left = (int)(end - mono_ms());
		if (left <= 0) {
			timed_out = true;
			break;
		}
		if (poll(fds, wfd >= 0 ? 2 : 1, left) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (wfd >= 0 && fds[1].revents) {
			ssize_t n = write(wfd, in + inoff, inlen - inoff);
			if (n > 0)
				inoff += (size_t)n;
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				inoff = inlen;
			if (inoff >= inlen) {
				close(wfd);
				wfd = -1;
			}
		}
		if (fds[0].revents) {
			if (len + 4096 > cap) {
				if (cap >= OUT_MAX)
					break;
				char *nb = realloc(buf, cap * 2);
				if (nb == NULL)
					break;
				buf = nb;
				cap *= 2;
			}
			ssize_t n = read(pout[0], buf + len, cap - len - 1);
			if (n == 0)
				break;
			if (n > 0)
				len += (size_t)n;
			else if (errno != EINTR && errno != EAGAIN)
				break;
		}
	}
	if (wfd >= 0)
		close(wfd);
	close(pout[0]);
	struct timespec zero = { 0, 0 };
	while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
		;
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	if (timed_out)
		kill(pid, SIGKILL);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (buf == NULL)
		return KB_ENOMEM;
	buf[len] = '\0';
	*out = buf;
	*status = timed_out ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	if (timed_out)
		snprintf(err, errlen, "CNI plugin %s timed out after %d s",
		    type, PLUGIN_TIMEOUT_MS / 1000);
	return timed_out ? KB_ETIMEOUT : 0;
}

/* Run one plugin of the list; its result (a new reference) into *res. */
static int run_one(struct kubelet *kl, const char *cmd, const char *uid,
    const char *netns, const json_t *list, const json_t *plugin,
    const json_t *prev, json_t **res, char *err, size_t errlen)
{
	*res = NULL;
	const char *type = json_string_value(json_object_get(plugin, "type"));
	if (type == NULL) {
		snprintf(err, errlen, "CNI plugin config without a type");
		return KB_EINVAL;
	}
	json_t *conf = json_deep_copy(plugin);
	json_object_set(conf, "cniVersion",
	    json_object_get(list, "cniVersion"));
	json_object_set(conf, "name", json_object_get(list, "name"));
	if (prev)
		json_object_set(conf, "prevResult", (json_t *)prev);
	char *in = json_dumps(conf, JSON_COMPACT);
	json_decref(conf);
	char *env[16];
	int n = 0;
	env[n++] = kl_strf("CNI_COMMAND=%s", cmd);
	env[n++] = kl_strf("CNI_CONTAINERID=%s", uid);
	env[n++] = kl_strf("CNI_NETNS=%s", netns ? netns : "");
	env[n++] = kl_strf("CNI_IFNAME=eth0");
	env[n++] = kl_strf("CNI_PATH=%s", kl->cfg.cni_bin_dir);
	env[n++] = kl_strf("PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	env[n] = NULL;
	char *out = NULL;
	int status = 0, rc = KB_ENOMEM;
	bool envok = in != NULL;
	for (int i = 0; i < n; i++)
		envok &= env[i] != NULL;
	if (envok)
		rc = exec_plugin(kl, type, (const char *const *)env, in, &out,
		    &status, err, errlen);
	for (int i = 0; i < n; i++)
		free(env[i]);
	free(in);
	if (rc) {
		free(out);
		return rc;
	}
	json_error_t je;
	json_t *r = out[0] ? json_loads(out, 0, &je) : NULL;
	if (status != 0) {
		/* The spec's error shape: {cniVersion, code, msg, details}. */
		const char *msg = json_string_value(json_object_get(r, "msg"));
		const char *det =
		    json_string_value(json_object_get(r, "details"));
		snprintf(err, errlen, "CNI %s %s failed (exit %d): %s%s%s",
		    type, cmd, status, msg ? msg : out, det && *det ? ": " : "",
		    det ? det : "");
		err[strcspn(err, "\n")] = '\0';
		json_decref(r);
		free(out);
		return KB_ESYS;
	}
	free(out);
	*res = r;
	return 0;
}

bool kl_cni_result_ip(const char *result, char *ip, size_t iplen)
{
	json_error_t je;
	json_t *r = result ? json_loads(result, 0, &je) : NULL;
	json_t *ips = json_object_get(r, "ips");
	bool found = false;
	size_t i;
	json_t *e;
	json_array_foreach(ips, i, e) {
		const char *a =
		    json_string_value(json_object_get(e, "address"));
		if (a == NULL || !strncmp(a, "127.", 4) ||
		    !strncmp(a, "::1/", 4))
			continue;
		size_t n = strcspn(a, "/");
		if (n >= iplen)
			continue;
		snprintf(ip, iplen, "%.*s", (int)n, a);
		found = true;
		break;
	}
	json_decref(r);
	return found;
}

static char *pod_file(struct kubelet *kl, const char *uid, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/pods/%s/%s", kl->root, uid, name) < 0)
		return NULL;
	return p;
}

int kl_cni_add(struct kubelet *kl, const char *uid, const char *netns,
    const char *pod_dir, char **result, char *ip, size_t iplen, char *err,
    size_t errlen)
{
	char cidr[64];
	*result = NULL;
	pthread_mutex_lock(&kl->mu);
	snprintf(cidr, sizeof(cidr), "%s", kl->pod_cidr);
	pthread_mutex_unlock(&kl->mu);
	if (!cidr[0]) {
		snprintf(err, errlen, "no pod CIDR");
		return KB_ESTATE;
	}
	json_t *list = conflist(kl, cidr);
	if (list == NULL)
		return KB_ENOMEM;
	char *text = json_dumps(list, JSON_INDENT(2));
	char *lpath = pod_file(kl, uid, "cni-conflist.json");
	char *rpath = pod_file(kl, uid, "cni-result.json");
	char *shared;
	int rc = KB_ENOMEM;
	if (text == NULL || lpath == NULL || rpath == NULL)
		goto out;
	/* For people: the list in force, as a CNI config dir would hold it. */
	if (asprintf(&shared, "%s/cni", kl->root) >= 0) {
		kl_mkdirs(shared);
		free(shared);
		if (asprintf(&shared, "%s/cni/10-kubus.conflist", kl->root) >=
		    0) {
			kl_write_file(shared, text, strlen(text), 0644);
			free(shared);
		}
	}
	if ((rc = kl_write_file(lpath, text, strlen(text), 0644)) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", lpath,
		    strerror(errno));
		goto out;
	}
	json_t *plugins = json_object_get(list, "plugins"), *prev = NULL;
	size_t i;
	json_t *pl;
	json_array_foreach(plugins, i, pl) {
		json_t *res;
		rc = run_one(kl, "ADD", uid, netns, list, pl, prev, &res, err,
		    errlen);
		if (rc)
			break;
		json_decref(prev);
		prev = res;
	}
	if (rc == 0) {
		*result = json_dumps(prev, JSON_COMPACT);
		if (*result == NULL)
			rc = KB_ENOMEM;
		else if (!kl_cni_result_ip(*result, ip, iplen)) {
			snprintf(err, errlen, "CNI result without a pod IP: %s",
			    *result);
			rc = KB_EINVAL;
		} else if ((rc = kl_write_file(rpath, *result, strlen(*result),
				0644)) != 0) {
			snprintf(err, errlen, "cannot write %s", rpath);
		}
	}
	json_decref(prev);
	if (rc) {
		char derr[256];
		free(*result);
		*result = NULL;
		/* Undo what the plugins that ran may have done. */
		kl_cni_del(kl, uid, netns, pod_dir, derr, sizeof(derr));
	}
out:
	json_decref(list);
	free(text);
	free(lpath);
	free(rpath);
	return rc;
}

int kl_cni_del(struct kubelet *kl, const char *uid, const char *netns,
    const char *pod_dir, char *err, size_t errlen)
{
	char *lpath = pod_file(kl, uid, "cni-conflist.json");
	char *rpath = pod_file(kl, uid, "cni-result.json");
	if (lpath == NULL || rpath == NULL) {
		free(lpath);
		free(rpath);
		return KB_ENOMEM;
	}
	json_error_t je;
	json_t *list = json_load_file(lpath, 0, &je);
	json_t *prev = json_load_file(rpath, 0, &je);
	int rc = 0;
	if (list == NULL) {
		/* ADD never ran (or its list is gone): nothing to delete. */
		goto out;
	}
	/* A namespace that is gone is no error for DEL: the plugins are
	 * told "" and only release what they hold outside it (the IP). */
	if (netns && !kl_netns_is_ns(netns))
		netns = NULL;
	json_t *plugins = json_object_get(list, "plugins");
	for (size_t i = json_array_size(plugins); i-- > 0;) {
		json_t *res = NULL;
		char e1[512];
		int r = run_one(kl, "DEL", uid, netns, list,
		    json_array_get(plugins, i), prev, &res, e1, sizeof(e1));
		json_decref(res);
		/* A plugin that cannot be run holds nothing we could free:
		 * the ADD it was part of failed on it, or it is gone. */
		if (r == KB_ENOENT)
			r = 0;
		if (r && rc == 0) {
			rc = r;
			snprintf(err, errlen, "%s", e1);
		}
	}
	if (rc == 0) {
		unlink(rpath);
		unlink(lpath);
	}
out:
	json_decref(list);
	json_decref(prev);
	free(lpath);
	free(rpath);
	return rc;
}

void kl_pod_net_teardown(struct kubelet *kl, const char *uid)
{
	char ns[128], err[512];
	char *dir = kl_pod_dir(kl, uid);
	if (dir == NULL)
		return;
	/* Without CNI and without a pod dir (a hollow pod: runtime-fake, no
	 * volumes) nothing was set up: no list to DEL, no netns, no volume,
	 * no dir — skip the two file reads, umount and nftw per pod. */
	struct stat st;
	if (!kl->cni && stat(dir, &st) != 0 && errno == ENOENT) {
		free(dir);
		return;
	}
	kl_netns_path(uid, ns, sizeof(ns));
	int rc = kl_cni_del(kl, uid, ns, dir, err, sizeof(err));
	if (rc)
		kb_warn(kl->ctx, "CNI DEL failed", "uid=%s err=\"%s\"", uid,
		    err);
	kl_netns_remove(ns);
	kl_volumes_teardown(dir);
	if (rc == 0) /* else keep the list and result for a later DEL */
		kl_rmrf(dir);
	free(dir);
}
