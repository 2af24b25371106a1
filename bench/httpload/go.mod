module github.com/crmcycle/crm/bench/httpload

go 1.26.8
