module github.com/crmcycle/crm/cmd/crm

go 1.26.8

require (
	github.com/crmcycle/crm/gateway v0.0.0-00010101000000-000000000000
	github.com/crmcycle/crm/pkg v0.0.0-00010101000000-000000000000
	github.com/crmcycle/crm/proto v0.0.0-00010101000000-000000000000
	github.com/crmcycle/crm/services/marketing v0.0.0-00010101000000-000000000000
	github.com/crmcycle/crm/services/product v0.0.0-00010101000000-000000000000
	github.com/crmcycle/crm/services/sales v0.0.0-00010101000000-000000000000
	github.com/crmcycle/crm/services/support v0.0.0-00010101000000-000000000000
)

replace github.com/crmcycle/crm/proto => ../../proto

replace github.com/crmcycle/crm/pkg => ../../pkg

replace github.com/crmcycle/crm/gateway => ../../gateway

replace github.com/crmcycle/crm/services/marketing => ../../services/marketing

replace github.com/crmcycle/crm/services/sales => ../../services/sales

replace github.com/crmcycle/crm/services/product => ../../services/product

replace github.com/crmcycle/crm/services/support => ../../services/support
