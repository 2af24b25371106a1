module github.com/crmcycle/crm/bench/webhooks

go 1.26.8
