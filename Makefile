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
LIBS    := -lbpf -lelf -lz -linih -ljansson
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

BPF_PROGS := steer track
USER_SRCS := user/agent.c user/cli.c user/config.c user/control.c user/health.c user/log.c \
	     user/main.c user/proc.c user/steer.c user/track.c
USER_OBJS := $(patsubst user/%.c,$(BUILD)/%.o,$(USER_SRCS))
SKELS     := $(patsubst %,$(BUILD)/%.skel.h,$(BPF_PROGS))
TESTS     := $(BUILD)/test_config $(BUILD)/test_health $(BUILD)/test_steer

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

$(BUILD)/test_config: tests/unit/test_config.c $(BUILD)/config.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -linih -lcmocka -o $@

$(BUILD)/test_health: tests/unit/test_health.c $(BUILD)/health.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -pthread -lcmocka -o $@

$(BUILD)/test_steer: tests/bpf/test_steer.c $(BUILD)/steer.o $(BUILD)/log.o
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDFLAGS) -lbpf -lelf -lz -lcmocka -o $@

deps:
	$(Q)tools/deps.sh

# The tests run the ASan+UBSan build of everything.
test: deps
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 all
	$(Q)tests/run.sh $(BUILD)/san

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo.sh $(BUILD)

# Benchmarks: measured in one run; issue 7 adds the rest of the suite.
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/bench-drain.sh $(BUILD) 100

clean:
	$(Q)rm -rf $(BUILD)
