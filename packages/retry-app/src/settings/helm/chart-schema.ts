/**
 * The chart's own part of values.schema.json: every value that is not a setting of `detour-retry run`
 * (image, Service, probes, pod settings, Secrets…), with an empty placeholder (`{}`) where a setting's
 * schema goes (`helm-chart.ts` fills it from the settings table and refuses a setting without one).
 */
export const CHART_SCHEMA_BASE: Record<string, unknown> = {
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "detour-retry-worker values",
  "description": "Values of the Detour retry worker chart. Required settings (kafka.brokers, groupId, topics, handler) may be empty here; the templates fail with a message naming what to set.",
  "type": "object",
  "additionalProperties": false,
  "definitions": {
    "nonNegativeInteger": {
      "type": "integer",
      "minimum": 0
    },
    "positiveInteger": {
      "type": "integer",
      "minimum": 1
    },
    "optionalInteger": {
      "type": [
        "integer",
        "null"
      ],
      "minimum": 0
    },
    "topicName": {
      "type": "string",
      "pattern": "^[a-zA-Z0-9._-]{1,249}$"
    },
    "topicTemplate": {
      "type": "string",
      "description": "Topic name template with {topic} and {groupId}; empty: the worker's default.",
      "pattern": "^([a-zA-Z0-9._-]|\\{topic\\}|\\{groupId\\})*$"
    },
    "duration": {
      "type": "string",
      "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
    },
    "intOrPercent": {
      "oneOf": [
        {
          "type": "integer",
          "minimum": 0
        },
        {
          "type": "string",
          "pattern": "^[0-9]+%$"
        },
        {
          "type": "null"
        }
      ]
    },
    "stringMap": {
      "type": "object",
      "additionalProperties": {
        "type": "string"
      }
    },
    "probe": {
      "type": "object",
      "description": "Probe timing (the HTTP check itself is set by the chart).",
      "properties": {
        "initialDelaySeconds": {
          "$ref": "#/definitions/nonNegativeInteger"
        },
        "periodSeconds": {
          "$ref": "#/definitions/positiveInteger"
        },
        "timeoutSeconds": {
          "$ref": "#/definitions/positiveInteger"
        },
        "failureThreshold": {
          "$ref": "#/definitions/positiveInteger"
        },
        "successThreshold": {
          "$ref": "#/definitions/positiveInteger"
        },
        "terminationGracePeriodSeconds": {
          "$ref": "#/definitions/positiveInteger"
        }
      },
      "additionalProperties": false
    },
    "list": {
      "type": "array",
      "items": {
        "type": "object"
      }
    }
  },
  "properties": {
    "global": {
      "type": "object",
      "description": "Values shared by a parent chart (ignored)."
    },
    "replicaCount": {
      "$ref": "#/definitions/nonNegativeInteger"
    },
    "image": {
      "type": "object",
      "additionalProperties": false,
      "required": [
        "repository",
        "pullPolicy"
      ],
      "properties": {
        "repository": {
          "type": "string",
          "minLength": 1
        },
        "tag": {
          "type": "string"
        },
        "digest": {
          "type": "string",
          "pattern": "^(|sha256:[a-f0-9]{64})$"
        },
        "pullPolicy": {
          "enum": [
            "Always",
            "IfNotPresent",
            "Never"
          ]
        }
      }
    },
    "imagePullSecrets": {
      "type": "array",
      "items": {
        "type": "object",
        "required": [
          "name"
        ],
        "properties": {
          "name": {
            "type": "string"
          }
        }
      }
    },
    "nameOverride": {
      "type": "string"
    },
    "fullnameOverride": {
      "type": "string"
    },
    "kafka": {
      "type": "object",
      "additionalProperties": false,
      "required": [
        "brokers",
        "ssl",
        "sasl"
      ],
      "properties": {
        "brokers": {},
        "clientId": {},
        "ssl": {
          "type": "object",
          "additionalProperties": false,
          "properties": {
            "enabled": {
              "type": "boolean"
            },
            "caSecret": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "name": {
                  "type": "string"
                },
                "key": {
                  "type": "string",
                  "pattern": "^[-._a-zA-Z0-9]+$"
                }
              }
            }
          }
        },
        "sasl": {
          "type": "object",
          "additionalProperties": false,
          "properties": {
            "mechanism": {},
            "username": {},
            "existingSecret": {
              "type": "string"
            },
            "passwordKey": {
              "type": "string",
              "pattern": "^[-._a-zA-Z0-9]+$"
            },
            "password": {
              "type": "string"
            }
          }
        }
      }
    },
    "groupId": {},
    "workerGroupId": {},
    "consumerGroup": {},
    "topics": {},
    "handler": {},
    "topicNaming": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "retry": {},
        "redirect": {},
        "error": {}
      }
    },
    "createTopics": {},
    "checkTopicSettings": {},
    "backoff": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "type": {},
        "initialDelayMs": {},
        "maxDelayMs": {},
        "multiplier": {},
        "jitter": {}
      }
    },
    "maxAttempts": {},
    "exhaustedPolicy": {},
    "maxRetryDurationMs": {},
    "maxInFlight": {},
    "maxBufferedMessages": {},
    "commitIntervalMs": {},
    "handlerTimeoutMs": {},
    "purgeResolvedRecords": {},
    "purgeIntervalMs": {},
    "maxWaitTimeMs": {},
    "sessionTimeoutMs": {},
    "heartbeatIntervalMs": {},
    "rebalanceTimeoutMs": {},
    "shutdownTimeoutMs": {},
    "closeTimeoutMs": {},
    "terminationGracePeriodSeconds": {
      "type": [
        "integer",
        "null"
      ],
      "minimum": 1
    },
    "logLevel": {},
    "metrics": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "port": {},
        "podAnnotations": {
          "type": "boolean"
        }
      }
    },
    "adminToken": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "existingSecret": {
          "type": "string",
          "description": "Existing Secret holding the admin token (DETOUR_ADMIN_TOKEN): opens GET /groups/held and POST /groups/release to callers beyond the pod (Service, another pod). Empty: those routes answer loopback callers only (kubectl port-forward)."
        },
        "key": {
          "type": "string",
          "pattern": "^[-._a-zA-Z0-9]+$",
          "description": "Key of the token in existingSecret."
        }
      }
    },
    "service": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "type": {
          "enum": [
            "ClusterIP",
            "NodePort",
            "LoadBalancer"
          ]
        },
        "port": {
          "type": "integer",
          "minimum": 1,
          "maximum": 65535
        },
        "annotations": {
          "$ref": "#/definitions/stringMap"
        }
      }
    },
    "serviceMonitor": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "enabled": {
          "type": "boolean"
        },
        "namespace": {
          "type": "string"
        },
        "labels": {
          "$ref": "#/definitions/stringMap"
        },
        "interval": {
          "$ref": "#/definitions/duration"
        },
        "scrapeTimeout": {
          "$ref": "#/definitions/duration"
        },
        "relabelings": {
          "$ref": "#/definitions/list"
        },
        "metricRelabelings": {
          "$ref": "#/definitions/list"
        }
      }
    },
    "podDisruptionBudget": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "enabled": {
          "type": "boolean"
        },
        "minAvailable": {
          "$ref": "#/definitions/intOrPercent"
        },
        "maxUnavailable": {
          "$ref": "#/definitions/intOrPercent"
        }
      }
    },
    "serviceAccount": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "create": {
          "type": "boolean"
        },
        "name": {
          "type": "string"
        },
        "annotations": {
          "$ref": "#/definitions/stringMap"
        }
      }
    },
    "automountServiceAccountToken": {
      "type": "boolean"
    },
    "strategy": {
      "type": "object",
      "properties": {
        "type": {
          "enum": [
            "RollingUpdate",
            "Recreate"
          ]
        }
      }
    },
    "podAnnotations": {
      "$ref": "#/definitions/stringMap"
    },
    "podLabels": {
      "$ref": "#/definitions/stringMap"
    },
    "resources": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "requests": {
          "type": "object"
        },
        "limits": {
          "type": "object"
        },
        "claims": {
          "type": "array"
        }
      }
    },
    "podSecurityContext": {
      "type": "object"
    },
    "securityContext": {
      "type": "object"
    },
    "livenessProbe": {
      "$ref": "#/definitions/probe"
    },
    "readinessProbe": {
      "$ref": "#/definitions/probe"
    },
    "extraEnv": {
      "type": "array",
      "items": {
        "type": "object",
        "required": [
          "name"
        ],
        "properties": {
          "name": {
            "type": "string",
            "pattern": "^[-._a-zA-Z][-._a-zA-Z0-9]*$"
          }
        }
      }
    },
    "extraEnvFrom": {
      "$ref": "#/definitions/list"
    },
    "extraVolumes": {
      "$ref": "#/definitions/list"
    },
    "extraVolumeMounts": {
      "$ref": "#/definitions/list"
    },
    "initContainers": {
      "$ref": "#/definitions/list"
    },
    "nodeSelector": {
      "$ref": "#/definitions/stringMap"
    },
    "tolerations": {
      "$ref": "#/definitions/list"
    },
    "affinity": {
      "type": "object"
    },
    "topologySpreadConstraints": {
      "$ref": "#/definitions/list"
    },
    "priorityClassName": {
      "type": "string"
    }
  }
}
