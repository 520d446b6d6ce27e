/* tests/unit/test_kubectl_deploy.c — real kubectl against a hollow-node
 * cluster in this process (store, API server, the deployment, replicaset,
 * gc, namespace, endpoints and endpointslice controllers, the scheduler
 * and two kubelets on runtime-fake): create deployment, rollout status,
 * expose, endpoints and endpointslices following scale and pod readiness,
 * set image + rollout status + undo, delete with each cascade mode, and
 * namespace deletion. Skipped without /usr/bin/kubectl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "ctrl_util.h"

static const char config[] =
    "host: {name: kd, log_level: warn}\n"
    "bus: {listen: []}\n"
    "plugins:\n"
    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
    "  - name: apiserver\n"
    "    use: apiserver\n"
    "    config: {listen: \"127.0.0.1:0\"}\n"
    "  - {name: ctrl-deployment, use: ctrl-deployment}\n"
    "  - {name: ctrl-replicaset, use: ctrl-replicaset}\n"
    "  - {name: ctrl-gc, use: ctrl-gc}\n"
    "  - {name: ctrl-namespace, use: ctrl-namespace}\n"
    "  - {name: ctrl-endpoints, use: ctrl-endpoints}\n"
    "  - {name: ctrl-endpointslice, use: ctrl-endpointslice}\n"
    "  - {name: scheduler, use: scheduler}\n"
    "  - name: kubelet-1\n"
    "    use: kubelet\n"
    "    config: {node_name: hollow-1, runtime: runtime-fake,\n"
    "             runtime_config: {ip_prefix: \"10.91\"}, sync_period: 300ms}\n"
    "  - name: kubelet-2\n"
    "    use: kubelet\n"
    "    config: {node_name: hollow-2, runtime: runtime-fake,\n"
    "             runtime_config: {ip_prefix: \"10.92\"}, sync_period: 300ms}\n";

struct kd {
	struct kbt_host *h;
	char *home;
	char prefix[4096];
};

static struct kd K;

/* Run kubectl ARGS; its output (static, trailing whitespace cut). */
static char *kc(int *rc, const char *fmt, ...)
{
	static char out[65536];
	char args[4096], cmd[8400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", K.prefix, args);
	char *o = NULL;
	int r = kbt_run(cmd, &o);
	snprintf(out, sizeof(out), "%s", o ? o : "");
	free(o);
	size_t n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	if (rc)
		*rc = r;
	return out;
}

/* kubectl ARGS must succeed and print `want` (a substring). */
#define KC_OK(want, ...)                                                       \
	do {                                                                   \
		int rc_;                                                       \
		char *o_ = kc(&rc_, __VA_ARGS__);                              \
		if (rc_ != 0 || !strstr(o_, want))                             \
			fail_msg("kubectl " #__VA_ARGS__                       \
				 ": exit %d, wanted \"%s\" in:\n%s",           \
			    rc_, want, o_);                                    \
	} while (0)

/* Poll kubectl ARGS (60 s) until its output is exactly `want`, or holds
 * it when not `exact` (Events, say, are posted without waiting). */
#define KC_POLL(exact, want, ...)                                              \
	do {                                                                   \
		char *o_ = NULL;                                               \
		bool ok_ = false;                                              \
		for (int i_ = 0; i_ < 200 && !ok_; i_++) {                     \
			o_ = kc(NULL, __VA_ARGS__);                            \
			ok_ = (exact) ? !strcmp(o_, want) :                    \
					strstr(o_, want) != NULL;              \
			if (!ok_)                                              \
				ct_sleep_ms(300);                              \
		}                                                              \
		if (!ok_)                                                      \
			fail_msg("kubectl " #__VA_ARGS__                       \
				 ": wanted \"%s\", last got:\n%s",             \
			    want, o_);                                         \
	} while (0)
#define KC_WAIT(want, ...) KC_POLL(true, want, __VA_ARGS__)
#define KC_SOON(want, ...) KC_POLL(false, want, __VA_ARGS__)

/* How many whitespace-separated words kubectl ARGS prints. */
static int words(const char *fmt, const char *arg)
{
	char *o = kc(NULL, fmt, arg);
	int n = 0;
	for (char *t = strtok(o, " \n"); t; t = strtok(NULL, " \n"))
		n++;
	return n;
}

static int setup(void **state)
{
	if (access("/usr/bin/kubectl", X_OK) != 0)
		return 0;
	char err[1024];
	K.h = kbt_host_start(config, err, sizeof(err));
	if (K.h == NULL) {
		fprintf(stderr, "host: %s\n", err);
		return -1;
	}
	K.home = kbt_mkdtemp("kubectl-home");
	snprintf(K.prefix, sizeof(K.prefix),
	    "HOME=%s KUBECONFIG=%s/admin.kubeconfig /usr/bin/kubectl "
	    "--cache-dir=%s/cache --request-timeout=30s",
	    K.home, kbt_host_data_dir(K.h), K.home);
	return 0;
}

static int teardown(void **state)
{
	if (K.h)
		kbt_host_stop(K.h);
	if (K.home)
		kbt_rmrf(K.home);
	free(K.home);
	return 0;
}

static void test_deploy_and_endpoints(void **state)
{
	if (K.h == NULL)
		skip();
	KC_OK("deployment.apps/web created",
	    "create deployment web --image=busybox --replicas=3");
	KC_OK("successfully rolled out",
	    "rollout status deployment/web --timeout=60s");
	KC_OK("service/web exposed",
	    "expose deployment web --port=80 --target-port=8080");
	/* three addresses, port 8080 */
	KC_WAIT("3 8080",
	    "get endpoints web -o go-template='{{range .subsets}}{{len .addresses}} "
	    "{{range .ports}}{{.port}}{{end}}{{end}}'");
	KC_OK(":8080,", "get endpoints web");
	KC_OK("IPv4", "get endpointslices -l kubernetes.io/service-name=web");
	KC_OK("8080", "get endpointslices -l kubernetes.io/service-name=web");
	printf("# %s\n", kc(NULL, "get endpoints web"));
	printf("# %s\n",
	    kc(NULL, "get endpointslices -l kubernetes.io/service-name=web"));
	KC_WAIT("true true true",
	    "get endpointslices -l kubernetes.io/service-name=web -o "
	    "jsonpath='{.items[*].endpoints[*].conditions.ready}'");

	/* scale to 5 and to 1: the endpoints follow */
	KC_OK("deployment.apps/web scaled",
	    "scale deployment web --replicas=5");
	KC_WAIT("5",
	    "get endpoints web -o go-template='{{range .subsets}}{{len .addresses}}{{end}}'");
	KC_WAIT("5",
	    "get endpointslices -l kubernetes.io/service-name=web -o "
	    "go-template='{{range .items}}{{len .endpoints}}{{end}}'");
	KC_OK("deployment.apps/web scaled",
	    "scale deployment web --replicas=1");
	KC_WAIT("1",
	    "get endpoints web -o go-template='{{range .subsets}}{{len .addresses}}{{end}}'");
	KC_WAIT("1",
	    "get endpointslices -l kubernetes.io/service-name=web -o "
	    "go-template='{{range .items}}{{len .endpoints}}{{end}}'");

	/* the pod turns not ready (its Ready condition, written through the
	 * status subresource as a kubelet would): notReadyAddresses, and
	 * ready=false in the slice */
	char pod[256];
	snprintf(pod, sizeof(pod), "%s",
	    kc(NULL,
		"get pods -l app=web -o jsonpath='{.items[0].metadata.name}'"));
	assert_true(strncmp(pod, "web-", 4) == 0);
	KC_OK("patched",
	    "patch pod %s --subresource=status --type=strategic -p "
	    "'{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}'",
	    pod);
	KC_WAIT("0 1",
	    "get endpoints web -o go-template='{{range .subsets}}"
	    "{{if .addresses}}{{len .addresses}}{{else}}0{{end}} "
	    "{{if .notReadyAddresses}}{{len .notReadyAddresses}}{{else}}0{{end}}"
	    "{{end}}'");
	KC_WAIT("false",
	    "get endpointslices -l kubernetes.io/service-name=web -o "
	    "jsonpath='{.items[*].endpoints[*].conditions.ready}'");
	KC_OK("patched",
	    "patch pod %s --subresource=status --type=strategic -p "
	    "'{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}'",
	    pod);
	KC_WAIT("1 0",
	    "get endpoints web -o go-template='{{range .subsets}}"
	    "{{if .addresses}}{{len .addresses}}{{else}}0{{end}} "
	    "{{if .notReadyAddresses}}{{len .notReadyAddresses}}{{else}}0{{end}}"
	    "{{end}}'");

	/* the service goes, its Endpoints and slices with it */
	KC_OK("service \"web\" deleted", "delete service web");
	KC_WAIT("",
	    "get endpoints,endpointslices -l kubernetes.io/service-name=web -o name");
	int rc;
	kc(&rc, "get endpoints web");
	assert_int_not_equal(rc, 0);
}

/* What the controllers, the scheduler and the kubelet record, as
 * `kubectl describe` shows it on Kubernetes. */
static void test_events(void **state)
{
	if (K.h == NULL)
		skip();
	KC_OK("deployment.apps/ev created",
	    "create deployment ev --image=busybox --replicas=2");
	KC_OK("successfully rolled out",
	    "rollout status deployment/ev --timeout=60s");
	KC_OK("deployment.apps/ev scaled", "scale deployment ev --replicas=1");
	KC_SOON("from 2 to 1", "describe deployment ev");
	char *o = kc(NULL, "describe deployment ev");
	printf("# %s\n", strstr(o, "Events:") ? strstr(o, "Events:") : o);
	KC_OK("ScalingReplicaSet  ", "describe deployment ev");
	KC_OK("deployment-controller  Scaled up replica set ev-",
	    "describe deployment ev");
	KC_OK("deployment-controller  Scaled down replica set ev-",
	    "describe deployment ev");
	KC_OK("from 0 to 2", "describe deployment ev");
	KC_SOON("replicaset-controller  Deleted pod: ev-", "describe rs -l app=ev");
	KC_OK("SuccessfulCreate  ", "describe rs -l app=ev");
	KC_OK("replicaset-controller  Created pod: ev-", "describe rs -l app=ev");
	char pod[256], want[400];
	snprintf(pod, sizeof(pod), "%s",
	    kc(NULL, "get pods -l app=ev -o jsonpath='{.items[0].metadata.name}'"));
	assert_true(strncmp(pod, "ev-", 3) == 0);
	snprintf(want, sizeof(want),
	    "default-scheduler  Successfully assigned default/%s to hollow-", pod);
	KC_SOON(want, "describe pod %s", pod);
	KC_SOON("kubelet            Started container busybox", "describe pod %s",
	    pod);
	o = kc(NULL, "describe pod %s", pod);
	printf("# %s\n", strstr(o, "Events:") ? strstr(o, "Events:") : o);
	KC_OK("Normal  Scheduled  ", "describe pod %s", pod);
	/* and what a kubelet records about its Node */
	KC_SOON("Node hollow-1 status is now: NodeReady", "describe node hollow-1");
	KC_OK("Starting kubelet.", "describe node hollow-1");
	KC_OK("Node hollow-1 status is now: NodeHasSufficientMemory",
	    "describe node hollow-1");
}

static void test_rollout(void **state)
{
	if (K.h == NULL)
		skip();
	KC_OK("deployment.apps/ro created",
	    "create deployment ro --image=busybox --replicas=3");
	KC_OK("successfully rolled out",
	    "rollout status deployment/ro --timeout=60s");
	KC_OK("image updated", "set image deployment/ro busybox=busybox:2");
	KC_OK("successfully rolled out",
	    "rollout status deployment/ro --timeout=60s");
	KC_WAIT("busybox:2 busybox:2 busybox:2",
	    "get pods -l app=ro --field-selector=status.phase=Running -o "
	    "jsonpath='{.items[*].spec.containers[0].image}'");
	KC_OK("2 ", "rollout history deployment/ro");
	KC_OK("deployment.apps/ro rolled back", "rollout undo deployment/ro");
	KC_OK("successfully rolled out",
	    "rollout status deployment/ro --timeout=60s");
	KC_WAIT("busybox",
	    "get deploy ro -o jsonpath='{.spec.template.spec.containers[0].image}'");
	KC_WAIT("busybox busybox busybox",
	    "get pods -l app=ro --field-selector=status.phase=Running -o "
	    "jsonpath='{.items[*].spec.containers[0].image}'");
	/* two ReplicaSets: the current one with 3, the other at 0 */
	KC_WAIT("0 3",
	    "get rs -l app=ro --sort-by=.spec.replicas -o "
	    "jsonpath='{.items[*].spec.replicas}'");
}

static void test_cascades(void **state)
{
	if (K.h == NULL)
		skip();
	const char *names[] = { "bg", "fg", "or" };
	for (int i = 0; i < 3; i++) {
		KC_OK("created",
		    "create deployment %s --image=busybox --replicas=2",
		    names[i]);
		KC_OK("successfully rolled out",
		    "rollout status deployment/%s --timeout=60s", names[i]);
	}
	/* background: gone at once, then its ReplicaSet and pods */
	KC_OK("deployment.apps \"bg\" deleted",
	    "delete deployment bg --cascade=background");
	KC_WAIT("", "get rs,pods -l app=bg -o name");
	/* foreground: kubectl waits until the dependents are gone first */
	KC_OK("deployment.apps \"fg\" deleted",
	    "delete deployment fg --cascade=foreground --timeout=60s");
	KC_WAIT("", "get deploy,rs,pods -l app=fg -o name");
	/* orphan: the ReplicaSet and its pods stay, owned by nobody */
	KC_OK("deployment.apps \"or\" deleted",
	    "delete deployment or --cascade=orphan --timeout=60s");
	int rc;
	kc(&rc, "get deployment or");
	assert_int_not_equal(rc, 0);
	KC_WAIT("",
	    "get rs -l app=or -o jsonpath='{.items[*].metadata.ownerReferences}'");
	assert_int_equal(words("get rs -l app=%s -o name", "or"), 1);
	ct_sleep_ms(1000);
	assert_int_equal(words("get pods -l app=%s -o name", "or"), 2);
}

static void test_namespace(void **state)
{
	if (K.h == NULL)
		skip();
	KC_OK("namespace/doomed created", "create namespace doomed");
	KC_OK("created",
	    "create deployment d -n doomed --image=busybox --replicas=2");
	KC_OK("successfully rolled out",
	    "rollout status deployment/d -n doomed --timeout=60s");
	KC_OK("created", "create configmap cm -n doomed --from-literal=a=b");
	KC_OK("namespace \"doomed\" deleted",
	    "delete namespace doomed --timeout=60s");
	int rc;
	char *o = kc(&rc, "get namespace doomed");
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(o, "NotFound"));
	KC_WAIT("", "get pods,rs,deploy,cm -n doomed -o name");
}

int main(void)
{
	if (access("/usr/bin/kubectl", X_OK) != 0)
		printf("skipping: no /usr/bin/kubectl (./build.sh installs "
		       "kubernetes-client)\n");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deploy_and_endpoints),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_rollout),
		cmocka_unit_test(test_cascades),
		cmocka_unit_test(test_namespace),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
