/*
 * Loaded into the processes of a local run (LD_PRELOAD): every bind() to the wildcard address
 * binds to loopback instead, so that nothing a run starts is reachable from another machine.
 *
 * Why here: Flink's local mini-cluster (its REST API and blob server) and Apache Beam's gRPC
 * servers for the Python functions bind every interface in code, whatever the configuration
 * says (measured with `ss -ltnp`); a JVM and a gRPC core offer no switch for it.
 *
 * IPv4 0.0.0.0 becomes 127.0.0.1. IPv6 :: becomes ::ffff:127.0.0.1 on a dual-stack socket (a
 * JVM's wildcard is one: clients that resolve localhost to 127.0.0.1 still connect), else ::1.
 * Every other address is left as it is.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_function)(int, const struct sockaddr *, socklen_t);

static bind_function real_bind(void) {
    static bind_function found = NULL;
    if (found == NULL) {
        found = (bind_function)dlsym(RTLD_NEXT, "bind");
    }
    return found;
}

int bind(int fd, const struct sockaddr *address, socklen_t length) {
    bind_function next = real_bind();
    if (address != NULL && address->sa_family == AF_INET &&
        length >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in copy;
        memcpy(&copy, address, sizeof copy);
        if (copy.sin_addr.s_addr == htonl(INADDR_ANY)) {
            copy.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return next(fd, (const struct sockaddr *)&copy, sizeof copy);
        }
    } else if (address != NULL && address->sa_family == AF_INET6 &&
               length >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 copy;
        memcpy(&copy, address, sizeof copy);
        if (IN6_IS_ADDR_UNSPECIFIED(&copy.sin6_addr)) {
            int v6only = 0;
            socklen_t size = sizeof v6only;
            if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &size) == 0 && !v6only) {
                inet_pton(AF_INET6, "::ffff:127.0.0.1", &copy.sin6_addr);
            } else {
                copy.sin6_addr = in6addr_loopback;
            }
            return next(fd, (const struct sockaddr *)&copy, sizeof copy);
        }
    }
    return next(fd, address, length);
}
