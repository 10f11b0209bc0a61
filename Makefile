# SPDX-License-Identifier: MIT
# baton: quiet by default, V=1 for full commands; SANITIZE=1 for ASan+UBSan.

BUILD   ?= build
SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD   := $(BUILD)/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
PREFIX  ?= /usr/local

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Iuser -I$(BUILD) $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
LIBS    := -lbpf -lelf -lz -linih -ljansson -lcurl -lm
BPF_CFLAGS := -g -O2 -mcpu=v3 -target bpf -D__TARGET_ARCH_x86 -Ivmlinux -Iinclude -Ibpf -Wall -Werror

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all deps test test-unit demo bench clean install
.PHONY: fuzz fuzz-build test-kernel bench-bins

BPF_PROGS := steer track drain latency latgraft bytes
USER_SRCS := user/adopt.c user/agent.c user/bytes.c user/cgroup.c user/checks.c user/cli.c user/clievents.c user/clienv.c user/clihelp.c user/clilat.c user/clistatus.c user/config.c user/confhooks.c user/confkeys.c user/confval.c user/control.c \
	     user/ctlserver.c user/dp.c user/drain.c user/events.c user/exec.c user/features.c user/fsm.c user/fsm_baseline.c user/fsm_confirm.c user/fsm_gate.c user/fsm_gates.c user/fsm_ops.c user/fsm_rollout.c \
	     user/fsm_version.c user/health.c user/httpdrain.c user/httpgate.c user/httpstat.c user/lathist.c user/latency.c user/latrank.c user/latview.c user/listen.c user/log.c user/loop.c \
	     user/main.c user/metrics.c user/model.c user/notify.c user/orphan.c user/proc.c user/promgate.c user/reload.c \
	     user/reqparse.c user/requests.c user/restore.c user/services.c user/statefile.c \
	     user/status.c user/steer.c user/track.c user/versions.c user/webhook.c
# Rolling rollouts (issue 18).
USER_SRCS += user/rollconf.c user/fsm_rolling.c user/fsm_rollretire.c user/fsm_rollhold.c
USER_SRCS += user/sockcg.c user/acceptq.c
# The rollback window (issue 18, part 2).
USER_SRCS += user/history.c user/histjson.c user/fsm_history.c user/clihistory.c
# Holds in status, their deadlines across a restart (issue 20).
USER_SRCS += user/statushold.c user/stateholds.c user/evlog.c user/journal.c user/logq.c
USER_OBJS := $(patsubst user/%.c,$(BUILD)/%.o,$(USER_SRCS))
SKELS     := $(patsubst %,$(BUILD)/%.skel.h,$(BPF_PROGS))
TESTS     := $(BUILD)/test_config $(BUILD)/test_health $(BUILD)/test_steer $(BUILD)/test_proc
TESTS     += $(BUILD)/test_migrate $(BUILD)/test_instconns $(BUILD)/test_fsm $(BUILD)/test_listen $(BUILD)/test_drain
TESTS     += $(BUILD)/test_nlack
TESTS     += $(BUILD)/test_acceptq
TESTS     += $(BUILD)/test_fsm_hold $(BUILD)/test_fsm_http $(BUILD)/test_fsm_ready $(BUILD)/test_fsm_rollhold
TESTS     += $(BUILD)/test_lathist
TESTS     += $(BUILD)/test_conflat
TESTS     += $(BUILD)/test_history
TESTS     += $(BUILD)/test_latrank $(BUILD)/test_httpgate
TESTS     += $(BUILD)/test_evlog $(BUILD)/test_journal $(BUILD)/test_logq

all: $(BUILD)/baton $(BUILD)/demo-server $(TESTS)

$(BUILD):
	$(Q)mkdir -p $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.bpf.h include/*.h) | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(BUILD)/%.o: user/%.c $(wildcard user/*.h include/*.h) $(SKELS) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/baton: $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

$(BUILD)/demo-server: tools/demo-server.c | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDFLAGS) -o $@

$(BUILD)/test_config: tests/unit/test_config.c $(BUILD)/config.o $(BUILD)/confkeys.o $(BUILD)/confhooks.o $(BUILD)/confval.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -linih -lcmocka -lm -o $@

$(BUILD)/test_conflat: tests/unit/test_conflat.c $(BUILD)/config.o $(BUILD)/confkeys.o $(BUILD)/confhooks.o $(BUILD)/confval.o $(BUILD)/rollconf.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -linih -lcmocka -lm -o $@

$(BUILD)/test_nlack: tests/unit/test_nlack.c user/nlack.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDFLAGS) -lcmocka -o $@

$(BUILD)/test_acceptq: tests/unit/test_acceptq.c user/acceptq.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDFLAGS) -lcmocka -o $@
$(BUILD)/test_lathist: tests/unit/test_lathist.c $(BUILD)/lathist.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -lcmocka -lm -o $@

# The rank test of the baseline comparison (issue 19): not in the agent yet, only tested.
$(BUILD)/test_latrank: tests/unit/test_latrank.c $(BUILD)/latrank.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -lcmocka -lm -o $@

# The event log's file writer (issue 20): a thread, bounded when the disk is stuck.
$(BUILD)/test_evlog: tests/unit/test_evlog.c $(BUILD)/evlog.o $(BUILD)/log.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -lcmocka -o $@

# The log's stderr writer, with a 1 KiB queue: drops, the line that says so, order.
$(BUILD)/test_logq: tests/unit/test_logq.c user/logq.c user/logq.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -DLOGQ_MAX=1024 tests/unit/test_logq.c user/logq.c $(LDFLAGS) -pthread -lcmocka -o $@

# journald's native protocol against a fake journal socket (issue 20).
$(BUILD)/test_journal: tests/unit/test_journal.c $(BUILD)/journal.o $(BUILD)/log.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -lcmocka -o $@

# The HTTP gates' arithmetic (min-success-rate, max-error-ratio).
$(BUILD)/test_httpgate: tests/unit/test_httpgate.c $(BUILD)/httpgate.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -lcmocka -lm -o $@

$(BUILD)/test_listen: tests/unit/test_listen.c $(BUILD)/listen.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -lcmocka -o $@

$(BUILD)/test_health: tests/unit/test_health.c $(BUILD)/health.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -pthread -lcmocka -o $@

FSM_OBJS  := fsm fsm_confirm fsm_gate fsm_gates fsm_ops fsm_rollout fsm_version fsm_rolling fsm_rollretire fsm_rollhold model \
	     fsm_history history latrank fsm_baseline httpgate
$(BUILD)/test_fsm: tests/unit/test_fsm.c $(patsubst %,$(BUILD)/%.o,$(FSM_OBJS)) $(BUILD)/log.o \
		   $(BUILD)/config.o $(BUILD)/confkeys.o $(BUILD)/confhooks.o $(BUILD)/confval.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter-out %.h,$^) $(LDFLAGS) -linih -lcmocka -lm -o $@

# The hold tests and measure-http's gate tests share tests/unit/fsm_hold_harness.h.
$(BUILD)/test_fsm_hold $(BUILD)/test_fsm_http: $(BUILD)/test_%: tests/unit/test_%.c \
			$(patsubst %,$(BUILD)/%.o,$(FSM_OBJS)) \
			$(BUILD)/log.o $(BUILD)/config.o $(BUILD)/confkeys.o $(BUILD)/confhooks.o \
			$(BUILD)/confval.o $(BUILD)/lathist.o $(BUILD)/stateholds.o \
			tests/unit/fsm_hold_harness.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter-out %.h,$^) $(LDFLAGS) -linih -ljansson -lcmocka -lm -o $@

$(BUILD)/test_fsm_ready: tests/unit/test_fsm_ready.c $(patsubst %,$(BUILD)/%.o,$(FSM_OBJS)) \
			 $(BUILD)/log.o $(BUILD)/config.o $(BUILD)/confkeys.o $(BUILD)/confhooks.o \
			 $(BUILD)/confval.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter-out %.h,$^) $(LDFLAGS) -linih -lcmocka -lm -o $@

# The config parser reads max-surge and max-unavailable with rollconf.c.
$(BUILD)/test_config $(BUILD)/test_fsm $(BUILD)/test_fsm_rolling $(BUILD)/test_fsm_hold $(BUILD)/test_fsm_http $(BUILD)/test_fsm_ready $(BUILD)/test_proc: $(BUILD)/rollconf.o

all: $(BUILD)/test_fsm_rolling
$(BUILD)/test_fsm_rolling: tests/unit/test_fsm_rolling.c $(patsubst %,$(BUILD)/%.o,$(FSM_OBJS)) \
			   $(BUILD)/log.o $(BUILD)/config.o $(BUILD)/confkeys.o $(BUILD)/confhooks.o \
			   $(BUILD)/confval.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter-out %.h,$^) $(LDFLAGS) -linih -lcmocka -lm -o $@

$(BUILD)/test_fsm_rollhold: tests/unit/test_fsm_rollhold.c $(patsubst %,$(BUILD)/%.o,$(FSM_OBJS)) \
			    $(BUILD)/log.o $(BUILD)/config.o $(BUILD)/confkeys.o $(BUILD)/confhooks.o \
			    $(BUILD)/confval.o $(BUILD)/rollconf.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter-out %.h,$^) $(LDFLAGS) -linih -lcmocka -lm -o $@

# The state-machine tests share tests/unit/fsm_harness.h, the rolling ones rolling_harness.h too.
FSM_TESTS := test_fsm test_fsm_hold test_fsm_http test_fsm_ready test_fsm_rolling test_fsm_rollhold \
	     test_history
$(patsubst %,$(BUILD)/%,$(FSM_TESTS)): tests/unit/fsm_harness.h
$(BUILD)/test_fsm_rolling $(BUILD)/test_fsm_rollhold: tests/unit/rolling_harness.h

$(BUILD)/test_history: tests/unit/test_history.c $(patsubst %,$(BUILD)/%.o,$(FSM_OBJS)) \
			$(BUILD)/histjson.o $(BUILD)/log.o $(BUILD)/config.o $(BUILD)/confkeys.o \
			$(BUILD)/confhooks.o $(BUILD)/confval.o $(BUILD)/rollconf.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter-out %.h,$^) $(LDFLAGS) -linih -ljansson -lcmocka -lm -o $@

$(BUILD)/test_proc: tests/unit/test_proc.c $(BUILD)/proc.o $(BUILD)/config.o $(BUILD)/confkeys.o $(BUILD)/confhooks.o $(BUILD)/confval.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -linih -lcmocka -lm -o $@

$(BUILD)/test_steer: tests/bpf/test_steer.c $(BUILD)/steer.o $(BUILD)/orphan.o $(BUILD)/log.o $(BUILD)/drop_ack.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LDFLAGS) -lbpf -lelf -lz -lcmocka -o $@

# Test helper BPF programs live in tests/bpf/; their skeletons come from the %.skel.h rule.
$(BUILD)/drop_ack.bpf.o: tests/bpf/drop_ack.bpf.c | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/test_migrate: tests/bpf/test_migrate.c $(BUILD)/steer.o $(BUILD)/track.o $(BUILD)/log.o \
		       $(BUILD)/drop_ack.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LDFLAGS) -lbpf -lelf -lz -lcmocka -o $@

$(BUILD)/test_instconns: tests/bpf/test_instconns.c $(BUILD)/steer.o $(BUILD)/track.o $(BUILD)/log.o \
			 $(BUILD)/drop_ack.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LDFLAGS) -lbpf -lelf -lz -lcmocka -o $@

$(BUILD)/test_drain: tests/bpf/test_drain.c $(BUILD)/drain.o $(BUILD)/drain.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LDFLAGS) -lbpf -lelf -lz -lcmocka -o $@

deps:
	$(Q)tools/deps.sh

# The tests run the ASan+UBSan build of everything.
test: deps
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 all bench-bins
	$(Q)tests/run.sh $(BUILD)/san

# The BPF suites and e2e tests in a VM booted with another kernel (tests/kvm/run.sh):
# KERNEL=6.1 (Debian's package, fetched with apt-get download into build/kernel)
# or KERNEL=path/to/vmlinuz; KVM_TESTS= and E2E= as tests/run.sh's TESTS= and E2E= (TESTS=
# on make's command line would replace the test binaries' list below).  KVM_E2E is
# the core subset (CI runs all of it, with more: .ci/run); in the VM 5
# deploys of each kind (DEPLOYS=) in 10-deploy-under-load, and 25 agent
# restarts in 64-agent-restart (RESTARTS=), prove what their 20 and 50 do
# here (CI takes 2 and 12, which still cover every case).
KERNEL  ?= 6.1
# Suites in the VM (tests/run.sh's TESTS, a name the test binaries list uses here).
KVM_TESTS ?= bpf e2e
KVM_E2E := 10-deploy-under-load 20-rollback 40-migrate-frozen 50-counts 55-drain-wait 60-canary \
	   64-agent-restart
test-kernel: deps
	$(Q)tools/deps.sh kernel
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 all
	$(Q)TESTS="$(KVM_TESTS)" E2E="$${E2E-$(KVM_E2E)}" DEPLOYS="$${DEPLOYS-5}" \
		RESTARTS="$${RESTARTS-25}" tests/kvm/run.sh $(KERNEL) $(BUILD)/san

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo.sh $(BUILD)

# Benchmarks (docs/performance.md): every part, or one with PART=steer|swaps|switch|proxy|footprint|scale|reset|rollout|drain|latency|rollmem|http.
BENCH_BINS := $(BUILD)/steer-bench $(BUILD)/loadgen $(BUILD)/drain-bench $(BUILD)/lat-bench \
	      $(BUILD)/http-bench
bench:
	$(Q)tools/deps.sh bench
	$(Q)$(MAKE) --no-print-directory all $(BENCH_BINS)
	$(Q)tools/bench/run.sh $(BUILD) $(PART)

# The bench's programs, built by make test too, so that a change that breaks them fails there.
bench-bins: $(BENCH_BINS)

$(BUILD)/steer-bench: tools/bench/steer-bench.c $(BUILD)/steer.o $(BUILD)/track.o $(BUILD)/log.o $(SKELS)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(BUILD)/steer.o $(BUILD)/track.o $(BUILD)/log.o $(LDFLAGS) -lbpf -lelf -lz -lm -pthread -o $@

$(BUILD)/lat-bench: tools/bench/lat-bench.c $(BUILD)/steer.o $(BUILD)/track.o $(BUILD)/log.o $(SKELS)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(BUILD)/steer.o $(BUILD)/track.o $(BUILD)/log.o $(LDFLAGS) -lbpf -lelf -lz -lm -pthread -o $@

$(BUILD)/drain-bench: tools/bench/drain-bench.c $(BUILD)/drain.o $(BUILD)/drain.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(BUILD)/drain.o $(LDFLAGS) -lbpf -lelf -lz -o $@

$(BUILD)/http-bench: tools/bench/http-bench.c $(BUILD)/drain.o $(BUILD)/drain.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(BUILD)/drain.o $(LDFLAGS) -lbpf -lelf -lz -lm -o $@

$(BUILD)/loadgen: tools/bench/loadgen.c | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDFLAGS) -lbpf -pthread -o $@

# Fuzzing (tests/fuzz/): libFuzzer harnesses built with clang into $(FUZZ_DIR), each run
# for FUZZ_SECONDS over its committed seeds (tests/fuzz/corpus/NAME, read only) and a
# work corpus in $(FUZZ_DIR)/corpus/NAME.  Fails on the first crash, leak or broken
# promise; the input is kept as $(FUZZ_DIR)/crash-NAME-*.
FUZZ_SECONDS ?= 60
FUZZ_DIR     := $(BUILD)/fuzz
FUZZERS      := config control http_status notify fsm
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Iuser -I$(BUILD) \
		-Itests/fuzz $(FUZZ_SAN)
FUZZ_OBJS    := $(patsubst %,$(FUZZ_DIR)/%.o,config confkeys confhooks confval fsm fsm_confirm fsm_gate fsm_gates fsm_ops fsm_rollout fsm_version health log model proc reqparse steer)
FUZZ_OBJS    += $(FUZZ_DIR)/rollconf.o $(FUZZ_DIR)/fsm_rolling.o $(FUZZ_DIR)/fsm_rollretire.o $(FUZZ_DIR)/fsm_rollhold.o
FUZZ_OBJS    += $(FUZZ_DIR)/fsm_history.o $(FUZZ_DIR)/history.o $(FUZZ_DIR)/latrank.o $(FUZZ_DIR)/fsm_baseline.o
FUZZ_OBJS    += $(FUZZ_DIR)/httpgate.o

$(FUZZ_DIR):
	$(Q)mkdir -p $@

# Library code gets coverage instrumentation but no main; the harness links libFuzzer's.
$(FUZZ_OBJS): $(FUZZ_DIR)/%.o: user/%.c $(wildcard user/*.h include/*.h) $(SKELS) | $(FUZZ_DIR)
	$(call msg,CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/fuzz_config: tests/fuzz/fuzz_config.c $(FUZZ_DIR)/config.o $(FUZZ_DIR)/confkeys.o $(FUZZ_DIR)/confhooks.o $(FUZZ_DIR)/confval.o
$(FUZZ_DIR)/fuzz_control: tests/fuzz/fuzz_control.c $(FUZZ_DIR)/config.o $(FUZZ_DIR)/confkeys.o $(FUZZ_DIR)/confhooks.o $(FUZZ_DIR)/confval.o $(FUZZ_DIR)/steer.o \
			  $(FUZZ_DIR)/log.o $(FUZZ_DIR)/reqparse.o
$(FUZZ_DIR)/fuzz_http_status: tests/fuzz/fuzz_http_status.c $(FUZZ_DIR)/health.o
$(FUZZ_DIR)/fuzz_notify: tests/fuzz/fuzz_notify.c $(FUZZ_DIR)/proc.o $(FUZZ_DIR)/config.o $(FUZZ_DIR)/confkeys.o $(FUZZ_DIR)/confhooks.o $(FUZZ_DIR)/confval.o
$(FUZZ_DIR)/fuzz_fsm: tests/fuzz/fuzz_fsm.c $(patsubst %,$(FUZZ_DIR)/%.o,$(FSM_OBJS)) $(FUZZ_DIR)/log.o \
		      $(FUZZ_DIR)/config.o $(FUZZ_DIR)/confkeys.o $(FUZZ_DIR)/confhooks.o $(FUZZ_DIR)/confval.o
$(FUZZ_DIR)/fuzz_config $(FUZZ_DIR)/fuzz_control $(FUZZ_DIR)/fuzz_notify $(FUZZ_DIR)/fuzz_fsm: $(FUZZ_DIR)/rollconf.o
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz.h
	$(call msg,CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(filter %.c %.o,$^) $(LIBS) -o $@

fuzz-build: $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZERS))

fuzz:
	$(Q)tools/deps.sh fuzz
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)failed=; for f in $(FUZZERS); do \
		mkdir -p $(FUZZ_DIR)/corpus/$$f; \
		dict=; [ -f tests/fuzz/$$f.dict ] && dict=-dict=tests/fuzz/$$f.dict; \
		printf '  %-8s %s (%ss)\n' FUZZ $$f $(FUZZ_SECONDS); \
		$(FUZZ_DIR)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_DIR)/crash-$$f- $$dict \
			$(FUZZ_DIR)/corpus/$$f tests/fuzz/corpus/$$f >$(FUZZ_DIR)/$$f.log 2>&1; \
		rc=$$?; \
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
			$(FUZZ_DIR)/$$f.log | sed 's/^/           /'; \
		if [ $$rc != 0 ]; then \
			echo "fuzz: $$f failed (exit $$rc); log $(FUZZ_DIR)/$$f.log:" >&2; \
			grep -A30 -E '^==[0-9]+==|broken:|runtime error' $(FUZZ_DIR)/$$f.log | \
				grep -v '^NOTE\|^ *Combine' | head -45 >&2; \
			failed="$$failed $$f"; \
		fi; \
	done; \
	[ -z "$$failed" ] || { echo "fuzz: failed:$$failed" >&2; exit 1; }

clean:
	$(Q)rm -rf $(BUILD)

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, its man pages, bash completion,
# systemd unit (ExecStart pointing at the installed binary) and the example configuration
# as /etc/baton/baton.conf.example; an existing /etc/baton/baton.conf is never touched.
# Installs what $(BUILD) holds and builds nothing: run make first.
.PHONY: uninstall
SBINDIR        := $(PREFIX)/sbin
MANDIR         := $(PREFIX)/share/man
BASHCOMPDIR    := $(PREFIX)/share/bash-completion/completions
SYSTEMDUNITDIR ?= /lib/systemd/system
INSTALLED      := $(SBINDIR)/baton $(MANDIR)/man8/baton.8 $(MANDIR)/man5/baton.conf.5 \
		  $(BASHCOMPDIR)/baton $(SYSTEMDUNITDIR)/baton.service /etc/baton/baton.conf.example

install:
	$(Q)test -x $(BUILD)/baton || { echo "install: no $(BUILD)/baton (run make first)" >&2; exit 1; }
	$(call msg,INSTALL,$(DESTDIR)$(SBINDIR)/baton)
	$(Q)install -D -m 0755 $(BUILD)/baton $(DESTDIR)$(SBINDIR)/baton
	$(call msg,INSTALL,$(DESTDIR)$(MANDIR)/man8/baton.8 man5/baton.conf.5)
	$(Q)install -D -m 0644 man/baton.8 $(DESTDIR)$(MANDIR)/man8/baton.8
	$(Q)install -D -m 0644 man/baton.conf.5 $(DESTDIR)$(MANDIR)/man5/baton.conf.5
	$(call msg,INSTALL,$(DESTDIR)$(BASHCOMPDIR)/baton)
	$(Q)install -D -m 0644 tools/completion/baton.bash $(DESTDIR)$(BASHCOMPDIR)/baton
	$(call msg,INSTALL,$(DESTDIR)$(SYSTEMDUNITDIR)/baton.service)
	$(Q)install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	$(Q)sed 's|@SBINDIR@|$(SBINDIR)|g' dist/baton.service >$(DESTDIR)$(SYSTEMDUNITDIR)/baton.service
	$(Q)chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/baton.service
	$(call msg,INSTALL,$(DESTDIR)/etc/baton/baton.conf.example)
	$(Q)install -D -m 0644 examples/web.conf $(DESTDIR)/etc/baton/baton.conf.example

# On the host itself (no DESTDIR), what a stopped agent left goes too: the
# pins of the default bpf-dir (and with them the track program's link) and
# the run-dir.  A running agent is never pulled out from under its services.
BATON_BPFDIR ?= /sys/fs/bpf/baton
BATON_RUNDIR ?= /run/baton
uninstall:
	$(Q)if [ -z "$(DESTDIR)" ] && [ -x $(SBINDIR)/baton ] && \
		$(SBINDIR)/baton status >/dev/null 2>&1; then \
		echo "uninstall: a baton agent is running; stop it first: baton shutdown --stop" >&2; \
		exit 1; fi
	$(call msg,RM,$(addprefix $(DESTDIR),$(INSTALLED)))
	$(Q)rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	$(Q)rmdir $(DESTDIR)/etc/baton 2>/dev/null || true
	$(Q)if [ -z "$(DESTDIR)" ]; then \
		if [ -d $(BATON_BPFDIR) ]; then echo "  RM       $(BATON_BPFDIR)"; rm -rf $(BATON_BPFDIR); fi; \
		rm -f $(BATON_RUNDIR)/state.json $(BATON_RUNDIR)/notify.sock; \
		rmdir $(BATON_RUNDIR) 2>/dev/null || true; fi
