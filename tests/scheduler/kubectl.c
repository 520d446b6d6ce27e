/* tests/scheduler/kubectl.c — the scheduler seen through real kubectl.
 *
 * One in-process host: store-lmdb, the API server on 127.0.0.1 (with its
 * admin.kubeconfig), the scheduler with its default profile, and three
 * hollow nodes — kubelet instances on runtime-fake with different cpu:
 *     n-small  1 cpu          (no labels)
 *     n-big    8 cpu          size=big
 *     n-gpu    4 cpu          gpu=true, taint dedicated=gpu:NoSchedule
 * Labels and the taint are set with `kubectl label` / `kubectl taint`;
 * pods are applied with `kubectl apply -f`:
 *     sel   nodeSelector size=big                     -> n-big
 *     tol   nodeSelector gpu=true + the toleration    -> n-gpu
 *     req   requests 6 cpu (fits n-big only)          -> n-big
 *     plain requests 500m, no toleration: not n-gpu   -> n-small or n-big
 *     none  requests 100 cpu: fits nowhere            -> Pending,
 *           PodScheduled=False and FailedScheduling in `kubectl describe`
 *           with "0/3 nodes are available: 1 node(s) had untolerated
 *           taint {dedicated: gpu}, 2 Insufficient cpu."
 * A bound pod's `kubectl describe` shows the Scheduled event.
 * Where each pod landed is read with `kubectl get -o jsonpath` and
 * `kubectl get pods -o wide`. Skipped (exit 77) without /usr/bin/kubectl. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define KUBECTL "/usr/bin/kubectl"

static int failures;
static char kcfg[1024], home[1024];

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Run kubectl ARGS; its output (malloc'd) and exit status. */
static int kubectl(const char *args, char **out)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
	    "KUBECONFIG='%s' HOME='%s' timeout 30 " KUBECTL
	    " --cache-dir='%s/cache' %s",
	    kcfg, home, home, args);
	return kbt_run(cmd, out);
}

static void check(bool ok, const char *what, const char *out)
{
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	if (!ok) {
		failures++;
		if (out)
			printf("---- output:\n%s\n----\n", out);
	}
}

/* Run until the output (trimmed) equals `want`, or contains it when
 * `contains`; up to ms. The last output (malloc'd) in *last. */
static bool wait_for(const char *args, const char *want, bool contains, int ms,
    char **last)
{
	char *out = NULL;
	for (int t = 0;; t += 200) {
		free(out);
		out = NULL;
		int rc = kubectl(args, &out);
		if (rc == 0 && out) {
			size_t n = strlen(out);
			while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
				out[--n] = '\0';
			if (contains ? strstr(out, want) != NULL :
				       !strcmp(out, want)) {
				if (last)
					*last = out;
				else
					free(out);
				return true;
			}
		}
		if (t >= ms)
			break;
		sleep_ms(200);
	}
	if (last)
		*last = out;
	else
		free(out);
	return false;
}

static void must_run(const char *args, const char *what)
{
	char *out = NULL;
	int rc = kubectl(args, &out);
	check(rc == 0, what, out);
	free(out);
}

static const char *const pods_yaml =
    "apiVersion: v1\n"
    "kind: Namespace\n"
    "metadata: {name: sched}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata: {name: sel, namespace: sched}\n"
    "spec:\n"
    "  nodeSelector: {size: big}\n"
    "  containers: [{name: c, image: busybox}]\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata: {name: tol, namespace: sched}\n"
    "spec:\n"
    "  nodeSelector: {gpu: \"true\"}\n"
    "  tolerations:\n"
    "  - {key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}\n"
    "  containers: [{name: c, image: busybox}]\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata: {name: req, namespace: sched}\n"
    "spec:\n"
    "  tolerations: [{operator: Exists}]\n"
    "  containers:\n"
    "  - name: c\n"
    "    image: busybox\n"
    "    resources: {requests: {cpu: \"6\", memory: 64Mi}}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata: {name: plain, namespace: sched}\n"
    "spec:\n"
    "  containers:\n"
    "  - name: c\n"
    "    image: busybox\n"
    "    resources: {requests: {cpu: 500m}}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata: {name: none, namespace: sched}\n"
    "spec:\n"
    "  containers:\n"
    "  - name: c\n"
    "    image: busybox\n"
    "    resources: {requests: {cpu: \"100\"}}\n";

#define KUBELET(name, cpu)                                                     \
	"  - name: kubelet-" name "\n"                                         \
	"    use: kubelet\n"                                                   \
	"    config: {node_name: " name ", cpu: \"" cpu "\", memory: 16Gi, "   \
	"runtime: runtime-fake, network: none, address: 127.0.0.1, "           \
	"status_interval: 2s, lease_interval: 2s}\n"

int main(void)
{
	if (access(KUBECTL, X_OK)) {
		printf("skip: %s is not installed\n", KUBECTL);
		return 77;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	char err[1024];
	const char *yaml =
	    "host:\n"
	    "  name: t\n"
	    "  log_level: warn\n"
	    "plugins:\n"
	    "  - name: store\n"
	    "    use: store-lmdb\n"
	    "    config: {sync: false}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\"}\n"
	    "  - name: scheduler\n"
	    "    use: scheduler\n"
	    "    config: {leaderElection: {leaderElect: false}}\n" KUBELET("n-small",
		"1") KUBELET("n-big", "8") KUBELET("n-gpu", "4");
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
	if (h == NULL) {
		printf("FAIL host: %s\n", err);
		return 1;
	}
	snprintf(kcfg, sizeof(kcfg), "%s/admin.kubeconfig",
	    kbt_host_data_dir(h));
	snprintf(home, sizeof(home), "%s/home", kbt_host_data_dir(h));
	char *out = NULL;

	/* The three nodes register and turn Ready. */
	bool ok =
	    wait_for("get nodes --no-headers -o custom-columns=N:.metadata.name",
		"n-big\nn-gpu\nn-small", false, 30000, &out);
	check(ok, "three hollow nodes registered", out);
	free(out);
	ok = wait_for("get node n-gpu -o jsonpath='{.status.allocatable.cpu}'",
	    "4", false, 20000, &out);
	check(ok, "n-gpu reports 4 cpu allocatable", out);
	free(out);

	must_run("label node n-big size=big", "kubectl label node n-big");
	must_run("label node n-gpu gpu=true", "kubectl label node n-gpu");
	must_run("taint node n-gpu dedicated=gpu:NoSchedule",
	    "kubectl taint node n-gpu");
	ok = wait_for(
	    "get node n-gpu -o jsonpath='{.spec.taints[0].key}={.spec.taints[0].effect}'",
	    "dedicated=NoSchedule", false, 5000, &out);
	check(ok, "the taint is on n-gpu", out);
	free(out);
	/* Let a status report pass: the labels and taint must survive it. */
	sleep_ms(2500);
	ok = wait_for("get node n-big -o jsonpath='{.metadata.labels.size}'",
	    "big", false, 3000, &out);
	check(ok, "labels survive the kubelet's status report", out);
	free(out);

	char *path = malloc(strlen(kbt_host_data_dir(h)) + 32);
	sprintf(path, "%s/pods.yaml", kbt_host_data_dir(h));
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(pods_yaml, f);
		fclose(f);
	}
	char args[2048];
	snprintf(args, sizeof(args), "apply -f '%s'", path);
	must_run(args, "kubectl apply -f pods.yaml");
	free(path);

	static const struct {
		const char *pod, *node, *what;
	} want[] = {
		{ "sel", "n-big", "nodeSelector size=big lands on n-big" },
		{ "tol", "n-gpu", "toleration + gpu selector lands on n-gpu" },
		{ "req", "n-big", "a 6-cpu request lands on the 8-cpu node" },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(args, sizeof(args),
		    "get pod -n sched %s -o jsonpath='{.spec.nodeName}'",
		    want[i].pod);
		ok = wait_for(args, want[i].node, false, 15000, &out);
		check(ok, want[i].what, out);
		free(out);
	}
	ok = wait_for("get pod -n sched plain -o jsonpath='{.spec.nodeName}'",
	    "n-", true, 15000, &out);
	check(ok && strcmp(out, "n-gpu") != 0,
	    "a pod without the toleration stays off the tainted node", out);
	free(out);

	/* The Scheduled event, as kube-scheduler records it. */
	ok = wait_for("describe pod -n sched sel",
	    "Successfully assigned sched/sel to n-big", true, 15000, &out);
	check(ok && strstr(out, "Scheduled") && strstr(out, "default-scheduler"),
	    "kubectl describe pod shows the Scheduled event", out);
	free(out);

	/* `kubectl get pods -o wide` shows the nodes. */
	ok = wait_for("get pods -n sched -o wide", "n-gpu", true, 5000, &out);
	bool wide = ok && strstr(out, "NODE") && strstr(out, "n-big");
	check(wide, "kubectl get pods -o wide shows the nodes", out);
	free(out);

	/* The pod that fits nowhere. */
	const char *msg = "0/3 nodes are available: 1 node(s) had untolerated "
			  "taint {dedicated: gpu}, 2 Insufficient cpu.";
	ok = wait_for(
	    "get pod -n sched none -o jsonpath='{.status.conditions[?(@.type==\"PodScheduled\")].status} {.status.conditions[?(@.type==\"PodScheduled\")].reason}'",
	    "False Unschedulable", false, 15000, &out);
	check(ok, "none: PodScheduled=False, reason Unschedulable", out);
	free(out);
	ok = wait_for(
	    "get pod -n sched none -o jsonpath='{.spec.nodeName}|{.status.phase}'",
	    "|Pending", false, 1000, &out);
	check(ok, "none stays Pending and unbound", out);
	free(out);
	ok = wait_for("describe pod -n sched none", msg, true, 15000, &out);
	bool desc = ok && strstr(out, "FailedScheduling") &&
	    strstr(out, "PodScheduled") && strstr(out, "False");
	check(desc,
	    "kubectl describe pod shows FailedScheduling with Kubernetes' message",
	    out);
	free(out);
	ok = wait_for(
	    "get events -n sched --field-selector reason=FailedScheduling -o jsonpath='{.items[*].involvedObject.name}'",
	    "none", true, 5000, &out);
	check(ok, "the FailedScheduling event is about pod none", out);
	free(out);

	kbt_host_stop(h);
	printf("sched_kubectl: %d failed\n", failures);
	return failures ? 1 : 0;
}
