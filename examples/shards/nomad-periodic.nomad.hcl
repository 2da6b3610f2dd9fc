# NOT TESTED HERE (see README.md). One periodic batch job, one task group per shard
# (add groups for shard3, shard4 ...). prohibit_overlap plays the role of fleet's lock.
# Needs: fleet, git and ssh on the clients; the keys in Nomad variables.
job "fleet-update" {
  type = "batch"

  periodic {
    crons            = ["0 2 * * *"]
    prohibit_overlap = true
  }

  dynamic "group" {
    for_each = ["shard1", "shard2"]
    labels   = [group.value]
    content {
      task "update" {
        driver = "exec"
        config {
          command = "/bin/sh"
          args = ["-ec", <<-EOT
            git clone --quiet git@git.example.com:ops/fleet.git work
            git clone --quiet git@git.example.com:ops/fleet-state.git work/state
            cd work
            rc=0
            fleet update -l ${group.value} --max-fail 5% --timeout 2h --no-progress || rc=$?
            git -C state push --quiet origin HEAD:controllers/nomad-${group.value}
            exit $rc
          EOT
          ]
        }
        template {
          data        = "{{ with nomadVar \"nomad/jobs/fleet-update\" }}{{ .ssh_key }}{{ end }}"
          destination = "secrets/id_ed25519"
          perms       = "0400"
        }
        env {
          GIT_SSH_COMMAND = "ssh -i ${NOMAD_SECRETS_DIR}/id_ed25519"
        }
        resources {
          cpu    = 1000
          memory = 512
        }
      }
    }
  }
}
